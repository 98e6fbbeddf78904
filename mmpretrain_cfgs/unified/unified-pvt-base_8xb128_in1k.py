# U-PVT-B on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_pvt_base (0.5).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedPVT', arch='base', drop_path_rate=0.5),
             neck=dict(in_channels=512), head=dict(in_channels=768))
