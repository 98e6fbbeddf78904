# Mask R-CNN + FPN with SG-Former-S, mmdet's transformer-backbone 1x recipe
# (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py). Drop path as the classifier's (the release has no
# detection code).
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='SGFormer', arch='s', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/sgformer-s_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
