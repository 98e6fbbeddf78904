# Mask R-CNN + FPN with FLatten-PVT-T, mmdet's transformer-backbone 3x recipe with multi-scale
# training and random crops (common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py). Drop path 0.1 for
# every size, as mmdet's PVT configs (the classifiers: T/S 0.1, M 0.3).
# A new LayerNorm on each returned map (norm_outputs), as mmdet's Swin and PVT: the stages end
# unnormalised.
_base_ = '../../common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVT', arch='tiny', drop_path_rate=0.1, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvt-tiny_in1k.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
