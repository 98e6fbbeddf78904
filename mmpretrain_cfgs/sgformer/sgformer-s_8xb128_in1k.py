# SG-Former-S on ImageNet-1k, the released recipe (common_cfgs/in1k_sgformer-ema-recipe.py):
# 8 GPUs x 128, lr 1e-3, EMA decay 0.99992, drop path 0.1.
_base_ = '../../common_cfgs/in1k_sgformer-ema-recipe.py'
model = dict(backbone=dict(type='SGFormer', arch='s', drop_path_rate=0.1, out_indices=(3, )),
             head=dict(in_channels=512))
