# U-ConvNeXt-T on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_convnext_tiny (0.1).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedConvNeXt', arch='tiny', drop_path_rate=0.1),
             neck=dict(in_channels=768), head=dict(in_channels=1152))
