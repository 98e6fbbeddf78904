# GroupMixFormer-S on ImageNet-1k with the official recipe (Swin's, see
# common_cfgs/in1k_swin-recipe.py): 300 epochs, AdamW lr 1e-3 at batch 8 x 128, 20 warmup epochs,
# cosine, drop path 0.2.
_base_ = '../../common_cfgs/in1k_swin-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='small', drop_path_rate=0.2, out_indices=(3, ),
                  final_norm=True),
    head=dict(in_channels=320))
