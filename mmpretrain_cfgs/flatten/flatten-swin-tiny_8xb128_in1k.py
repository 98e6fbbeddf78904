# FLatten-Swin-T on ImageNet-1k, the released recipe (cfgs/flatten_swin_t.yaml over the defaults of
# the official config.py): 300 epochs on 8 GPUs x 128, AdamW lr 5e-4 x 1024 / 512 = 1e-3 (betas
# 0.9/0.999, eps 1e-8), weight decay 0.05 (none on norms, biases and relative position bias
# tables), 20 warmup epochs from lr x 1e-3, cosine to lr x 0.01, both stepped per iteration,
# RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25, label smoothing 0.1, gradient clipping
# 5, drop path 0.2, no EMA.
# The other FLatten classifiers inherit this file and change the backbone, batch, lr and schedule.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='FLattenSwin', arch='tiny', drop_path_rate=0.2, out_indices=(3, ),
                  final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader
optim_wrapper = dict(clip_grad=dict(max_norm=5.0),
                     paramwise_cfg=dict(custom_keys={'.rel_pos_table': dict(decay_mult=0.0)}))
# warmup start and cosine floor as ratios of lr (the official warmup_lr and min_lr scale with the
# batch like lr), so that leaves changing lr keep them
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-2, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
