# CPU-sized demo: UperNet with FLatten-PVTv2-B0 on the generated ADE20K-format shapes dataset
# (common_cfgs/upernet_demo-800i-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/upernet_demo-800i-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVTv2', arch='b0',
                  init_cfg=dict(checkpoint='work_dirs/flatten-pvtv2-b0_demo/epoch_18.pth')),
    decode_head=dict(in_channels=[32, 64, 160, 256]),
    auxiliary_head=dict(in_channels=160))
