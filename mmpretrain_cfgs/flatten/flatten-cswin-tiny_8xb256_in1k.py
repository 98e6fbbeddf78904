# FLatten-CSWin-T on ImageNet-1k, the released recipe (cfgs/flatten_cswin_t.yaml, main_ema.py; see
# common_cfgs/in1k_cswin-ema-recipe.py): 8 GPUs x 256, lr 2e-3, EMA decay 0.99984, drop path 0.2.
_base_ = '../../common_cfgs/in1k_cswin-ema-recipe.py'
model = dict(
    backbone=dict(type='FLattenCSWin', arch='tiny', drop_path_rate=0.2, out_indices=(3, ),
                  final_norm=True),
    head=dict(in_channels=512))
