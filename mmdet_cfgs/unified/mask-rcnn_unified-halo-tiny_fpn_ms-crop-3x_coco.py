# Mask R-CNN + FPN with U-HaloNet-T, mmdet's transformer-backbone 3x recipe with multi-scale
# training and random crops (common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py). Drop path 0.2 as
# the official 1x detection config.
_base_ = '../../common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py'
model = dict(
    backbone=dict(type='UnifiedHaloNet', arch='tiny', drop_path_rate=0.2,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-halo-tiny_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
