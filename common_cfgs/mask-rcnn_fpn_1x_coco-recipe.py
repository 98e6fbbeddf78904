# Mask R-CNN + FPN on COCO, mmdet's transformer-backbone 1x recipe (mmdet's Swin-T config: AdamW
# 1e-4, weight decay 0.05, no decay on norms, 12 epochs, 8 GPUs x 2 images) without its Swin.
# Leaves set the backbone's type, arch, drop path and init_cfg.checkpoint (the converted ImageNet
# weights, made with
#   python tools/model_converters/<family>2mmpretrain.py OFFICIAL.pth checkpoints/<model>_in1k.pth
# ) and the neck's in_channels (the backbone's widths). Test-time augmentation: mask-rcnn_tta.py.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', './mask-rcnn_tta.py']
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, init_cfg=dict(type='Pretrained', prefix='backbone.')))
# no weight decay where the backbone's no_weight_decay() says (groupmix_backbones.engine)
optim_wrapper = dict(constructor='NoWeightDecayOptimWrapperConstructor')
# checkpoints written atomically, resume exact (groupmix_backbones.engine)
default_hooks = dict(checkpoint=dict(type='ResumableCheckpointHook'))
