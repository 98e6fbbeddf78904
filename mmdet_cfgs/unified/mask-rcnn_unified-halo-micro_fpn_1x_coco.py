# Mask R-CNN + FPN with U-HaloNet-Micro, the released detection recipe in mmdet 3.x: mmdet's
# transformer-backbone 1x recipe (common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py: AdamW 1e-4, weight
# decay 0.05, no decay on norms, steps at 8 and 11). Drop path 0.1 as the official config.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='UnifiedHaloNet', arch='micro', drop_path_rate=0.1,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-halo-micro_in1k.pth')),
    neck=dict(in_channels=[32, 64, 128, 256]))
