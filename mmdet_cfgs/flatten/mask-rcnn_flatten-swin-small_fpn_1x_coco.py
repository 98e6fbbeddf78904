_base_ = './mask-rcnn_flatten-swin-tiny_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/flatten-swin-small_in1k.pth')))
