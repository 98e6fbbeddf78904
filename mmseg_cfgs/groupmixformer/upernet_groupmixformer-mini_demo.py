# CPU-sized demo: UperNet with GroupMixFormer-M on the generated ADE20K-format shapes dataset
# (common_cfgs/upernet_demo-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/upernet_demo-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='mini', drop_path_rate=0.0,
                  norm_cfg=dict(type='SyncBN', requires_grad=True), norm_outputs=True,
                  init_cfg=dict(checkpoint='work_dirs/groupmixformer-mini_demo/epoch_6.pth')),
    decode_head=dict(in_channels=[40, 80, 160, 160]),
    auxiliary_head=dict(in_channels=160))
