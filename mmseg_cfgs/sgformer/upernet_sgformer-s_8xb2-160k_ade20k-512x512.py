# UperNet + auxiliary FCN head with SG-Former-S on ADE20K, mmseg's transformer-backbone 160k recipe
# (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py); drop path as the classifier's.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='SGFormer', arch='s', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/sgformer-s_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
