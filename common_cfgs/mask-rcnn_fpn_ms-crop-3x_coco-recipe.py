# Mask R-CNN + FPN on COCO, mmdet's transformer-backbone 3x recipe (mmdet's Swin-T config: the 1x
# optimizer, 36 epochs with multi-scale training and random crops) without its Swin. Leaves set the
# backbone and the neck's in_channels as on mask-rcnn_fpn_1x_coco-recipe.py.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py', './mask-rcnn_tta.py']
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, init_cfg=dict(type='Pretrained', prefix='backbone.')))
# no weight decay where the backbone's no_weight_decay() says (groupmix_backbones.engine)
optim_wrapper = dict(constructor='NoWeightDecayOptimWrapperConstructor')
# checkpoints written atomically, resume exact (groupmix_backbones.engine)
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
