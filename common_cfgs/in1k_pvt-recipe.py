# PVT's ImageNet-1k recipe as the FLatten release trains FLatten-PVT and FLatten-PVTv2
# (cfgs/flatten_pvt_t.yaml, cfgs/flatten_pvt_v2_b0.yaml): 300 epochs plus 10 cooldown epochs at the
# minimum lr, 8 GPUs x 128, AdamW lr 5e-4 x 1024 / 512 = 1e-3, weight decay 0.05, 5 warmup epochs
# from lr x 2e-3, cosine to lr x 0.02, no gradient clipping; augmentation, loss and optimizer as
# Swin's (in1k_swin-recipe.py). Leaves set the backbone (with its drop path), the head's width, and
# batch, lr and clipping where a model's release differs.
_base_ = './in1k_swin-recipe.py'
optim_wrapper = dict(clip_grad=None)
# warmup start and cosine floor as ratios of lr (the official warmup_lr and min_lr scale with the
# batch like lr), so that leaves changing lr keep them
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=2e-2, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=310)
