# Mask R-CNN + FPN with FLatten-CSWin-T, mmdet's transformer-backbone 1x recipe
# (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py). Drop path: T 0.3, S 0.4, B 0.6, the official CSWin
# UperNet values.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='FLattenCSWin', arch='tiny', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-tiny_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
