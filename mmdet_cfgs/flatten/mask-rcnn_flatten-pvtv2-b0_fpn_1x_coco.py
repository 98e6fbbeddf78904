# Mask R-CNN + FPN with FLatten-PVTv2-B0, mmdet's transformer-backbone 1x recipe
# (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py). Drop path 0.1 for B0-B2, as the classifiers and
# mmdet's PVTv2 configs.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVTv2', arch='b0', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvtv2-b0_in1k.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]))
