# CPU-sized segmentation demo on the generated ADE20K-format shapes dataset
# (tools/make_demo_data.py): upernet_8xb2-160k_ade20k-512x512-recipe.py with narrower heads, the
# 6 shapes and the background as classes, 128x128 crops, 500 iterations. Leaves set the backbone,
# initialised from their classification demo (train it first, as tools/demo.sh does, or train from
# random weights with --cfg-options model.backbone.init_cfg=None), and the heads' in_channels.
_base_ = './upernet_8xb2-160k_ade20k-512x512-recipe.py'

data_root = 'data/demo/ade/ADEChallengeData2016'
# label 0 is the background, a class here (ADE20K ignores its 0, "other", with reduce_zero_label):
# most pixels of the demo images are background, weighted down in the loss so that the shapes
# are learnt in a few hundred iterations
metainfo = dict(classes=('background', 'circle', 'square', 'triangle', 'star', 'cross', 'ring'))
crop_size = (128, 128)
loss = dict(type='CrossEntropyLoss', use_sigmoid=False, class_weight=[0.1] + [1.0] * 6)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(channels=64, num_classes=7, loss_decode=dict(loss, loss_weight=1.0)),
    auxiliary_head=dict(channels=32, num_classes=7, loss_decode=dict(loss, loss_weight=0.4)))
# images only enlarged before cropping, never padded: mmseg 1.2.2's cross-entropy with class
# weights fails on ignored (padding) pixels
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
# ADE20K's layout with our own classes (ADE20KDataset insists on its 150)
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline, **dataset))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline, **dataset))
test_dataloader = val_dataloader
# tools/test.py --tta at the demo's scale: the recipe's ratios of the test scale
tta_pipeline = _base_.tta_pipeline
tta_pipeline[1]['transforms'][0] = [
    dict(type='Resize', scale=(int(128 * ratio), int(128 * ratio)), keep_ratio=True)
    for ratio in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=500, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=500, val_interval=100)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=250, max_keep_ckpts=1))
randomness = dict(seed=0)
