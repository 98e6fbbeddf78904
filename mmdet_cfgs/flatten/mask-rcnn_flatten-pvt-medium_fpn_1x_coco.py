_base_ = './mask-rcnn_flatten-pvt-tiny_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='medium',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvt-medium_in1k.pth')))
