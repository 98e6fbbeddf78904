# SG-Former's ImageNet-1k recipe as released (OliverRensu/SG-Former, README and main.py defaults,
# timm's training script): 8 GPUs x 128, AdamW lr 1e-3, weight decay 0.05, 300 epochs plus 10
# cooldown epochs at the minimum lr, 20 warmup epochs from 1e-6 (lr x 1e-3), cosine to 1e-5
# (lr x 1e-2), no gradient clipping, EMA of the weights with decay 0.99992 (EMAHook momentum =
# 1 - decay); augmentation (RandAugment m9, random erasing 0.25, Mixup 0.8 / CutMix 1.0), label
# smoothing 0.1 and optimizer as Swin's (in1k_swin-recipe.py). Leaves set the backbone (with its
# drop path) and the head's width.
_base_ = './in1k_swin-recipe.py'
optim_wrapper = dict(clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=20, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=310)
custom_hooks = [dict(type='EMAHook', momentum=8e-5, priority='ABOVE_NORMAL')]
