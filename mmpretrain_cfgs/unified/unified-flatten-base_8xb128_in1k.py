# U-FLatten-B on ImageNet-1k (FLatten's focused linear attention in the unified architecture; a new model, no
# released weights): the family's recipe (common_cfgs/in1k_unified-recipe.py) with U-Swin-B's
# drop path (0.5).
_base_ = '../../common_cfgs/in1k_unified-recipe.py'
model = dict(backbone=dict(type='UnifiedFLatten', arch='base', drop_path_rate=0.5),
             neck=dict(in_channels=1024), head=dict(in_channels=1536))
