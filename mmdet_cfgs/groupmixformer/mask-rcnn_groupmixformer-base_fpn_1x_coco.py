_base_ = './mask-rcnn_groupmixformer-small_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-base_in1k.pth')),
    neck=dict(in_channels=[200, 240, 320, 480]))
