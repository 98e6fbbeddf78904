_base_ = './mask-rcnn_flatten-cswin-tiny_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-base_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
