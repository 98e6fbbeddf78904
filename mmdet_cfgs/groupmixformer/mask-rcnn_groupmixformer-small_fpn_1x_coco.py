# Mask R-CNN + FPN with GroupMixFormer-S, mmdet's transformer-backbone 1x recipe (AdamW 1e-4,
# weight decay 0.05, no decay on norms). Convert the ImageNet weights first:
#   python tools/model_converters/groupmixformer2mmpretrain.py OFFICIAL.pth checkpoints/groupmixformer-small_in1k.pth
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='GroupMixFormer',
        arch='small',
        drop_path_rate=0.2,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    neck=dict(in_channels=[80, 160, 320, 320]))
