# Mask R-CNN + FPN with FLatten-CSWin-T, mmdet's transformer-backbone 1x recipe
# (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py). Drop path: T 0.3, S 0.4, B 0.6, the official CSWin
# UperNet values.
# A new LayerNorm on each returned map (norm_outputs), as mmdet's Swin and PVT: the stages end
# unnormalised.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='FLattenCSWin', arch='tiny', drop_path_rate=0.3, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-tiny_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
