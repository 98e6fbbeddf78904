# U-InternImage-B on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_dcn_v3_base (0.5).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedInternImage', arch='base', drop_path_rate=0.5),
             neck=dict(in_channels=896), head=dict(in_channels=1344))
