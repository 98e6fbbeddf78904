# UperNet + auxiliary FCN head with FLatten-CSWin-T on ADE20K, mmseg's transformer-backbone 160k
# recipe (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py). Drop path: T 0.3, S 0.4, B 0.6,
# the official CSWin UperNet values.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='FLattenCSWin', arch='tiny', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-tiny_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
