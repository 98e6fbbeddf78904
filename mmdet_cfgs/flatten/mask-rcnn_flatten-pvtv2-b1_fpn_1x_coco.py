_base_ = './mask-rcnn_flatten-pvtv2-b0_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='b1',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvtv2-b1_in1k.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
