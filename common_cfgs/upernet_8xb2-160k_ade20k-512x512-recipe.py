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
