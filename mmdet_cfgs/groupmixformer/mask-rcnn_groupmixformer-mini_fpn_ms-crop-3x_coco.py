_base_ = './mask-rcnn_groupmixformer-small_fpn_ms-crop-3x_coco.py'
model = dict(
    backbone=dict(arch='mini', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-mini_in1k.pth')),
    neck=dict(in_channels=[40, 80, 160, 160]))
