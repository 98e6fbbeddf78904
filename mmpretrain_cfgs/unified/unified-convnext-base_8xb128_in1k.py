# U-ConvNeXt-B on ImageNet-1k: the released recipe (common_cfgs/in1k_unified-recipe.py) with
# the drop path of the official unified_convnext_base (0.5).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedConvNeXt', arch='base', drop_path_rate=0.5),
             neck=dict(in_channels=1024), head=dict(in_channels=1536))
