# U-Swin-T on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_swin_tiny (0.2).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedSwin', arch='tiny', drop_path_rate=0.2),
             neck=dict(in_channels=768), head=dict(in_channels=1152))
