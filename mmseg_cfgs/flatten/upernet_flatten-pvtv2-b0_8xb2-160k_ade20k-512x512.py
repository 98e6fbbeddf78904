# UperNet + auxiliary FCN head with FLatten-PVTv2-B0 on ADE20K, mmseg's transformer-backbone 160k
# recipe (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py). Drop path 0.1 for B0-B2, as the
# classifiers and mmdet's PVTv2 configs.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVTv2', arch='b0', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvtv2-b0_in1k.pth')),
    decode_head=dict(in_channels=[32, 64, 160, 256]),
    auxiliary_head=dict(in_channels=160))
