# CPU-sized demo: UperNet with U-FLatten-Micro on the generated ADE20K-format shapes dataset
# (common_cfgs/upernet_demo-1600i-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/upernet_demo-1600i-recipe.py'
model = dict(
    backbone=dict(type='UnifiedFLatten', arch='micro',
                  init_cfg=dict(checkpoint='work_dirs/unified-flatten-micro_demo/epoch_30.pth')),
    decode_head=dict(in_channels=[32, 64, 128, 256]),
    auxiliary_head=dict(in_channels=128))
