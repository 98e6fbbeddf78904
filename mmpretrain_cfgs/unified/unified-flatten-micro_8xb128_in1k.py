# U-FLatten-Micro on ImageNet-1k (FLatten's focused linear attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-Micro's
# drop path (0.0).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedFLatten', arch='micro', drop_path_rate=0.0),
             neck=dict(in_channels=256), head=dict(in_channels=384))
