# FLatten-Swin-T on ImageNet-1k, the released recipe (cfgs/flatten_swin_t.yaml over the defaults of
# the official config.py): 300 epochs on 8 GPUs x 128, AdamW lr 5e-4 x 1024 / 512 = 1e-3 (betas
# 0.9/0.999, eps 1e-8), weight decay 0.05 (none on norms, biases and relative position bias
# tables), 20 warmup epochs from lr x 1e-3, cosine to lr x 0.01, both stepped per iteration,
# RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25, label smoothing 0.1, gradient clipping
# 5, drop path 0.2, no EMA.
# The other FLatten-Swin sizes inherit this file.
_base_ = '../../common_cfgs/in1k_swin-recipe.py'
model = dict(
    backbone=dict(type='FLattenSwin', arch='tiny', drop_path_rate=0.2, out_indices=(3, ),
                  final_norm=True),
    head=dict(in_channels=768))
# warmup start and cosine floor as ratios of lr (the official warmup_lr and min_lr scale with the
# batch like lr), so that leaves changing lr keep them
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
