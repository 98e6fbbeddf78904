# CPU-sized demo: UperNet with the reduced SG-Former of
# mmpretrain_cfgs/sgformer/sgformer-tiny_demo.py on the generated ADE20K-format shapes dataset
# (common_cfgs/upernet_demo-recipe.py), the backbone initialised from that classification demo.
_base_ = '../../common_cfgs/upernet_demo-recipe.py'
model = dict(
    backbone=dict(type='SGFormer',
                  arch=dict(embed_dims=[32, 64, 128, 256], depths=[2, 2, 2, 1],
                            num_heads=[2, 2, 4, 8], mlp_ratios=[4, 4, 4, 4]),
                  init_cfg=dict(checkpoint='work_dirs/sgformer-tiny_demo/epoch_18.pth')),
    decode_head=dict(in_channels=[32, 64, 128, 256]),
    auxiliary_head=dict(in_channels=128))
