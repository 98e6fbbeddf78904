# UperNet + auxiliary FCN head with U-FLatten-S on ADE20K, mmseg's transformer-backbone 160k recipe
# (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py) with U-Swin-S's drop path
# (0.2). No released weights: the backbone starts from our classifier
# (mmpretrain_cfgs/unified/unified-flatten-small_8xb128_in1k.py), saved as below.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='UnifiedFLatten', arch='small', drop_path_rate=0.2,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-flatten-small_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
