# U-GroupMix-S on ImageNet-1k (GroupMixFormer's group-mix attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-S's
# drop path (0.3).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedGroupMix', arch='small', drop_path_rate=0.3),
             neck=dict(in_channels=720), head=dict(in_channels=1080))
