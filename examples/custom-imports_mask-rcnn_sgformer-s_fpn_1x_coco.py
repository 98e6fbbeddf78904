# One of our backbones in a config of mmdet's own: its Mask R-CNN R-50 1x, with SG-Former-S from its
# converted ImageNet weights (python -m groupmix_backbones model_converters/sgformer2mmpretrain
# OFFICIAL.pth checkpoints/sgformer-s_in1k.pth). custom_imports registers our backbones.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='SGFormer', arch='s', out_indices=(0, 1, 2, 3),
                  init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='checkpoints/sgformer-s_in1k.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
