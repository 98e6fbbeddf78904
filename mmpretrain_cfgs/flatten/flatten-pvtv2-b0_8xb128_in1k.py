# FLatten-PVTv2-B0 on ImageNet-1k (cfgs/flatten_pvt_v2_b0.yaml): the FLatten-PVT recipe
# (common_cfgs/in1k_pvt-recipe.py: 300 + 10 cooldown epochs, 8 GPUs x 128, lr 1e-3, 5 warmup
# epochs, no clipping), drop path 0.1. Every stage ends in its own LayerNorm, so the backbone has no
# final_norm.
_base_ = '../../common_cfgs/in1k_pvt-recipe.py'
model = dict(backbone=dict(type='FLattenPVTv2', arch='b0', drop_path_rate=0.1, out_indices=(3, )),
             head=dict(in_channels=256))
