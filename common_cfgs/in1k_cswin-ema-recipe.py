# CSWin's ImageNet-1k recipe with EMA as the FLatten release trains FLatten-CSWin
# (cfgs/flatten_cswin_t.yaml, main_ema.py), with the numbers of the T model: 300 epochs plus 10
# cooldown epochs at the minimum lr, 8 GPUs x 256, AdamW lr 5e-4 x 2048 / 512 = 2e-3, weight decay
# 0.05, 20 warmup epochs from lr x 2e-3, cosine to lr x 0.02, no gradient clipping, EMA of the
# weights with decay 0.99984 (EMAHook momentum = 1 - decay); augmentation, loss and optimizer as
# Swin's (in1k_swin-recipe.py). Leaves set the backbone (with its drop path), the head's width, and
# batch, lr, weight decay and EMA where a size differs.
_base_ = './in1k_swin-recipe.py'
train_dataloader = dict(batch_size=256)
optim_wrapper = dict(optimizer=dict(lr=2e-3), clip_grad=None)
# warmup start and cosine floor as ratios of lr (the official warmup_lr and min_lr scale with the
# batch like lr), so that leaves changing lr keep them
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=2e-2, by_epoch=True, begin=20, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=310)
custom_hooks = [dict(type='EMAHook', momentum=1.6e-4, priority='ABOVE_NORMAL')]
auto_scale_lr = dict(base_batch_size=2048)
