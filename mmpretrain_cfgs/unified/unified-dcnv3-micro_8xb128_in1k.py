# U-InternImage-Micro on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_dcn_v3_micro (0).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedInternImage', arch='micro', drop_path_rate=0.),
             neck=dict(in_channels=256), head=dict(in_channels=384))
