# Mask R-CNN + FPN with U-HaloNet-B, the released detection recipe in mmdet 3.x: mmdet's
# transformer-backbone 1x recipe (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py: AdamW 1e-4, weight
# decay 0.05, no decay on norms, steps at 8 and 11). Drop path 0.3 as the official config.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='UnifiedHaloNet', arch='base', drop_path_rate=0.3,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-halo-base_in1k.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
