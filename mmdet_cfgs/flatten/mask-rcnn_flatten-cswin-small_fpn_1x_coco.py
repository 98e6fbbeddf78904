_base_ = './mask-rcnn_flatten-cswin-tiny_fpn_1x_coco.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-small_in1k.pth')))
