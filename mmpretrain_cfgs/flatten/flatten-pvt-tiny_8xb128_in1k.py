# FLatten-PVT-T on ImageNet-1k, the released recipe (cfgs/flatten_pvt_t.yaml): 300 epochs plus 10
# cooldown epochs at the minimum lr, 8 GPUs x 128, AdamW lr 5e-4 x 1024 / 512 = 1e-3, weight decay
# 0.05, 5 warmup epochs from lr x 2e-3, cosine to lr x 0.02, no gradient clipping, drop path 0.1;
# augmentation, loss and optimizer as FLatten-Swin. The classifier averages the un-normed last
# stage (final_norm=False), as the official forward does.
_base_ = './flatten-swin-tiny_8xb128_in1k.py'
model = dict(backbone=dict(type='FLattenPVT', arch='tiny', drop_path_rate=0.1, final_norm=False),
             head=dict(in_channels=512))
optim_wrapper = dict(clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=2e-2, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=310)
