# Mask R-CNN + FPN with GroupMixFormer-S, mmdet's transformer-backbone 3x recipe with multi-scale
# training and random crops (common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py). SyncBN in the
# backbone (the tools fall back to BN without a GPU), a new norm on each returned map (norm_outputs:
# the RPN, shared across levels, trains unstably on the unnormalised stage outputs).
_base_ = '../../common_cfgs/mask-rcnn_fpn_ms-crop-3x_coco-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='small', drop_path_rate=0.2,
                  norm_cfg=dict(type='SyncBN', requires_grad=True), norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    neck=dict(in_channels=[80, 160, 320, 320]))
