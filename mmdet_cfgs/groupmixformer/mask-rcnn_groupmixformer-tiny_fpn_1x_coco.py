_base_ = './mask-rcnn_groupmixformer-small_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-tiny_in1k.pth')),
    neck=dict(in_channels=[80, 160, 200, 240]))
