# Mask R-CNN + FPN with FLatten-Swin-T, mmdet's transformer-backbone 3x recipe with multi-scale
# training and random crops (common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py). Drop path: T 0.2
# (mmdet's Swin-T Mask R-CNN), S and B 0.3 (mmseg's Swin UperNet and the Swin-B detectors). No decay
# on the relative position bias tables either.
# A new LayerNorm on each returned map (norm_outputs), as mmdet's Swin and PVT: the stages end
# unnormalised.
_base_ = '../../common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py'
model = dict(
    backbone=dict(type='FLattenSwin', arch='tiny', drop_path_rate=0.2, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/flatten-swin-tiny_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
