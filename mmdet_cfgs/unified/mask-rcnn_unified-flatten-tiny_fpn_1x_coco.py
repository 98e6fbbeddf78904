# Mask R-CNN + FPN with U-FLatten-T, the family's detection recipe (common_cfgs/mask-rcnn_fpn_1x_coco-
# recipe.py: AdamW 1e-4, weight decay 0.05, no decay on norms, steps at 8 and 11) with U-Swin-T's
# drop path (0.2). No released weights: the backbone starts from our classifier
# (mmpretrain_cfgs/unified/unified-flatten-tiny_8xb128_in1k.py), saved as below.
_base_ = '../../common_cfgs/mask-rcnn_fpn_1x_coco-recipe.py'
model = dict(
    backbone=dict(type='UnifiedFLatten', arch='tiny', drop_path_rate=0.2,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-flatten-tiny_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
