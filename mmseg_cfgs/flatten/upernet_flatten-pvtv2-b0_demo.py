# CPU-sized demo: UperNet with FLatten-PVTv2-B0 on the generated ADE20K-format shapes dataset
# (common_cfgs/upernet_demo-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/upernet_demo-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVTv2', arch='b0',
                  init_cfg=dict(checkpoint='work_dirs/flatten-pvtv2-b0_demo/epoch_18.pth')),
    decode_head=dict(in_channels=[32, 64, 160, 256]),
    auxiliary_head=dict(in_channels=160))
# from its weaker classification demo, FLatten's segmentation needs more iterations (test mIoU
# 34.9 after 500, 44.4 after 800)
train_cfg = dict(max_iters=800, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=800, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=400))
