# U-GroupMix-Micro on ImageNet-1k (GroupMixFormer's group-mix attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-Micro's
# drop path (0.0).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedGroupMix', arch='micro', drop_path_rate=0.0),
             neck=dict(in_channels=240), head=dict(in_channels=360))
