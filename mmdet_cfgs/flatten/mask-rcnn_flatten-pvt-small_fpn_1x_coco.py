_base_ = './mask-rcnn_flatten-pvt-tiny_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='small',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvt-small_in1k.pth')))
