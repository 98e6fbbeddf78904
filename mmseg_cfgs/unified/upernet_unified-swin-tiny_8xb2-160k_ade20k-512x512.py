# UperNet + auxiliary FCN head with U-Swin-T on ADE20K, mmseg's transformer-backbone
# 160k recipe (common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py); the release has no
# segmentation: drop path 0.2 as its detection config.
_base_ = '../../common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py'
model = dict(
    backbone=dict(type='UnifiedSwin', arch='tiny', drop_path_rate=0.2,
                  stage_norms=False, norm_outputs=True,
                  init_cfg=dict(checkpoint='checkpoints/unified-swin-tiny_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
