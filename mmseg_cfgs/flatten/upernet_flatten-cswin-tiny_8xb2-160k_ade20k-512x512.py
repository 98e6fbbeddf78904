# UperNet + auxiliary FCN head with FLatten-CSWin-T on ADE20K, mmseg's transformer-backbone 160k
# recipe (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py). Drop path: T 0.3, S 0.4, B 0.6,
# the official CSWin UperNet values.
# A new LayerNorm on each returned map (norm_outputs), as mmdet's Swin and PVT: the stages end
# unnormalised.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='FLattenCSWin', arch='tiny', drop_path_rate=0.3, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-tiny_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
