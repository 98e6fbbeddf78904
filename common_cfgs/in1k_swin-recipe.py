# Swin's ImageNet-1k recipe, as the GroupMixFormer and FLatten-Swin releases use it (the PVT and
# CSwin recipes, in1k_pvt-recipe.py and in1k_cswin-ema-recipe.py, change its schedule):
# mmpretrain's Swin pipeline (RandAugment, random erasing 0.25), AdamW schedule (lr 1e-3 at batch
# 1024, 300 epochs, 20 warmup epochs, cosine) and runtime; a classifier with label smoothing 0.1 and
# Mixup 0.8 / CutMix 1.0; 128 images per GPU; gradient clipping 5; no EMA. Leaves set the backbone
# and the head's width.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
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
# no weight decay where the backbone's no_weight_decay() says (groupmix_backbones.engine)
optim_wrapper = dict(constructor='NoWeightDecayOptimWrapperConstructor',
                     clip_grad=dict(max_norm=5.0))
# checkpoints written atomically, resume exact (groupmix_backbones.engine)
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
