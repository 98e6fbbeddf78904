# UperNet + auxiliary FCN head with U-FLatten-Micro on ADE20K, mmseg's transformer-backbone 160k recipe
# (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py) with U-Swin-Micro's drop path
# (0.1). No released weights: the backbone starts from our classifier
# (mmpretrain_cfgs/unified/unified-flatten-micro_8xb128_in1k.py), saved as below.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='UnifiedFLatten', arch='micro', drop_path_rate=0.1,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-flatten-micro_in1k.pth')),
    decode_head=dict(in_channels=[32, 64, 128, 256]),
    auxiliary_head=dict(in_channels=128))
