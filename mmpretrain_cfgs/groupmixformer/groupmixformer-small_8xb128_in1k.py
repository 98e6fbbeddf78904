# GroupMixFormer-S on ImageNet-1k, the official recipe: 300 epochs, AdamW (lr 1e-3 at batch 1024),
# 20 warmup epochs, cosine, RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25,
# label smoothing 0.1, gradient clipping 5, no EMA.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='GroupMixFormer', arch='small', drop_path_rate=0.2, out_indices=(3, ),
                  final_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=320,
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
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
