_base_ = './mask-rcnn_groupmixformer-small_fpn_ms-crop-3x_coco.py'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-large_in1k.pth')),
    neck=dict(in_channels=[240, 320, 360, 480]))
