# U-FLatten-S on ImageNet-1k (FLatten's focused linear attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-S's
# drop path (0.3).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedFLatten', arch='small', drop_path_rate=0.3),
             neck=dict(in_channels=768), head=dict(in_channels=1152))
