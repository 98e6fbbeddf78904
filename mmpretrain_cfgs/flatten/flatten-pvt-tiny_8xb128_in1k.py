# FLatten-PVT-T on ImageNet-1k, the released recipe (cfgs/flatten_pvt_t.yaml; see
# common_cfgs/in1k_pvt-recipe.py): 8 GPUs x 128, lr 1e-3, no gradient clipping, drop path 0.1. The
# classifier averages the un-normed last stage (final_norm=False), as the official forward does.
_base_ = '../../common_cfgs/in1k_pvt-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVT', arch='tiny', drop_path_rate=0.1, out_indices=(3, ),
                  final_norm=False),
    head=dict(in_channels=512))
