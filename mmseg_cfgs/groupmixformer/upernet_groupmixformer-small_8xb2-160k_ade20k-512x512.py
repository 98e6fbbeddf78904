# UperNet + auxiliary FCN head with GroupMixFormer-S on ADE20K, mmseg's transformer-backbone 160k
# recipe (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py). SyncBN in the backbone (the tools
# fall back to BN without a GPU), a new norm on each returned map (norm_outputs), as in detection.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='small', drop_path_rate=0.2,
                  norm_cfg=dict(type='SyncBN', requires_grad=True), norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    decode_head=dict(in_channels=[80, 160, 320, 320]),
    auxiliary_head=dict(in_channels=320))
