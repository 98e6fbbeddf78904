# Mask R-CNN + FPN with GroupMixFormer-S, 3x schedule with multi-scale training and random crops.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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
