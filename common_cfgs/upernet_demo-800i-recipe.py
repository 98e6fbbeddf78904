# The segmentation demo for backbones whose classification demo leaves them weaker (FLatten,
# the unified family): 800 iterations instead of 500 (FLatten-PVTv2-B0: test mIoU 34.9 after 500,
# 44.4 after 800).
_base_ = './upernet_demo-recipe.py'
train_cfg = dict(max_iters=800, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=800, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=400))
