# CPU-sized detection demo on the generated COCO-format shapes dataset (tools/make_demo_data.py):
# mask-rcnn_fpn_1x_coco-recipe.py with narrower FPN and heads, 6 classes, 160x160 images, 8 epochs
# (fewer sampled RoIs and RoIAlign samples than the COCO recipe, for speed).
# Leaves set the backbone, initialised from their classification demo (train it first, as
# tools/demo.sh does, or train from random weights with
# --cfg-options model.backbone.init_cfg=None), and the neck's in_channels.
_base_ = './mask-rcnn_fpn_1x_coco-recipe.py'

data_root = 'data/demo/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'cross', 'ring'))
image_scale = (160, 160)
model = dict(
    neck=dict(out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128, roi_layer=dict(sampling_ratio=2)),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=6),
        mask_roi_extractor=dict(out_channels=128, roi_layer=dict(sampling_ratio=2)),
        mask_head=dict(in_channels=128, conv_out_channels=128, num_classes=6)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=20)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
# tools/test.py --tta at the demo's scale: mask-rcnn_tta.py's three scales (0.5, 1 and 1.5 times
# the test scale)
tta_pipeline = _base_.tta_pipeline
tta_pipeline[1]['transforms'][0] = [dict(type='Resize', scale=(side, side), keep_ratio=True)
                                    for side in (80, 160, 240)]
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=4e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0, by_epoch=True, begin=0, end=8,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=8, val_interval=2)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=1))
randomness = dict(seed=0)
