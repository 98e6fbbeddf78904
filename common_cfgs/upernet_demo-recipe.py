# CPU-sized segmentation demo on the generated ADE20K-format shapes dataset
# (tools/make_demo_data.py): upernet_8xb2-160k_ade20k-512x512-recipe.py with narrower heads, 6
# classes, 128x128 crops, 200 iterations. Leaves set the backbone, initialised from their
# classification demo (train it first, as tools/demo.sh does, or train from random weights with
# --cfg-options model.backbone.init_cfg=None), and the heads' in_channels.
_base_ = './upernet_8xb2-160k_ade20k-512x512-recipe.py'

data_root = 'data/demo/ade/ADEChallengeData2016'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'cross', 'ring'))
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(channels=64, num_classes=6),
    auxiliary_head=dict(channels=32, num_classes=6))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
# ADE20K's layout and label convention with our own classes (ADE20KDataset insists on its 150)
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline, **dataset))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline, **dataset))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=200, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=1))
randomness = dict(seed=0)
