# UperNet + auxiliary FCN head on ADE20K, mmseg's transformer-backbone 160k recipe (mmseg's Swin-T
# config: AdamW 6e-5, weight decay 0.01, poly, 1500 warmup iterations, 8 GPUs x 2 images, 512x512
# crops) without its Swin. Leaves set the backbone as on mask-rcnn_fpn_1x_coco-recipe.py, the decode
# head's in_channels (the backbone's widths) and the auxiliary head's (the third width).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, init_cfg=dict(type='Pretrained', prefix='backbone.')))
# no weight decay where the backbone's no_weight_decay() says (groupmix_backbones.engine)
optim_wrapper = dict(constructor='NoWeightDecayOptimWrapperConstructor')
# checkpoints written atomically, resume exact (groupmix_backbones.engine)
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
# test-time augmentation (tools/test.py --tta) as the papers' multi-scale test (mmseg 0.x's
# MultiScaleFlipAug): the test scale (2048, 512) times 0.5 ... 1.75, each also flipped, the logits
# averaged by SegTTAModel. mmseg 1.x's ADE20K file resizes the original image by these ratios.
tta_model = dict(type='SegTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale=(int(2048 * ratio), int(512 * ratio)),
                           keep_ratio=True) for ratio in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
                     [dict(type='RandomFlip', prob=0., direction='horizontal'),
                      dict(type='RandomFlip', prob=1., direction='horizontal')],
                     [dict(type='LoadAnnotations')],  # reduce_zero_label: the dataset's
                     [dict(type='PackSegInputs')]]),
]
