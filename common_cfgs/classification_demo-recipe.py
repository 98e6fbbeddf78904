# CPU-sized classification demo on the generated shapes dataset (tools/make_demo_data.py): the Swin
# recipe's classifier and optimizer without Mixup/CutMix and label smoothing, 18 epochs at 64x64
# on 3600 images (from scratch, the attention-heavy SG-Former and FLatten need that many: on 1800
# they stop near 55% and 45% top-1, while GroupMixFormer reaches 83%).
# Leaves set the backbone and the head's width.
_base_ = './in1k_swin-recipe.py'

data_root = 'data/demo/imagenet'
classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')
image_size = 64
model = dict(head=dict(num_classes=len(classes), loss=dict(label_smooth_val=0.0)),
             train_cfg=None)  # no Mixup/CutMix
data_preprocessor = dict(num_classes=len(classes))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=image_size),
                 dict(type='PackInputs')]
dataset = dict(type='CustomDataset', data_root=data_root, classes=classes, with_label=True)
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                        dataset=dict(_delete_=True, ann_file='meta/train.txt',
                                     pipeline=train_pipeline, **dataset))
val_dataloader = dict(batch_size=64, num_workers=0, persistent_workers=False,
                      dataset=dict(_delete_=True, ann_file='meta/val.txt', pipeline=test_pipeline,
                                   **dataset))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1),
]
train_cfg = dict(max_epochs=18, val_interval=3)
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=6, max_keep_ckpts=1))
randomness = dict(seed=0)
