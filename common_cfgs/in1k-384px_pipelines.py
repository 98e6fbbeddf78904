# ImageNet pipelines of the 384x384 fine-tunes from 224 models (FLatten-Swin-B and FLatten-CSWin-B
# 384). The official fine-tunes keep the 224 training augmentation (RandAugment, random erasing;
# Mixup/CutMix stay in the model), here at 384.
# The names are their own: the leaves also inherit mmpretrain's 224 dataset file, and keys may not
# repeat across bases; leaves take them as {{_base_.train_pipeline_384px}} etc.
train_pipeline_384px = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
# official TEST.CROP False (Swin-B 384): resize to 384x384
test_pipeline_384px = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
# official TEST.CROP True (CSWin-B 384): resize to 384 x 256 / 224 = 438, centre crop 384
test_pipeline_384px_crop = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=438, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=384),
    dict(type='PackInputs'),
]
