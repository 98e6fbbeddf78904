# U-GroupMix-B on ImageNet-1k (GroupMixFormer's group-mix attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-B's
# drop path (0.5).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedGroupMix', arch='base', drop_path_rate=0.5),
             neck=dict(in_channels=960), head=dict(in_channels=1440))
