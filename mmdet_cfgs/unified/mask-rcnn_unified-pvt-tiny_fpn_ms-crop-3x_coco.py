# Mask R-CNN + FPN with U-PVT-T, mmdet's transformer-backbone 3x recipe with multi-scale training
# and random crops (common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py). Drop path 0.2 as the
# official 1x detection config.
_base_ = '../../common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py'
model = dict(
    backbone=dict(type='UnifiedPVT', arch='tiny', drop_path_rate=0.2,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-pvt-tiny_in1k.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
