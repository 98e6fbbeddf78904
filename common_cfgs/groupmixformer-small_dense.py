# GroupMixFormer-S as the backbone of the detection and segmentation configs: SyncBN (the tools
# fall back to BN without a GPU) and the converted ImageNet weights, made with
#   python tools/model_converters/groupmixformer2mmpretrain.py OFFICIAL.pth checkpoints/groupmixformer-small_in1k.pth
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
backbone = dict(
    _delete_=True,
    type='GroupMixFormer',
    arch='small',
    drop_path_rate=0.2,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    init_cfg=dict(type='Pretrained', prefix='backbone.',
                  checkpoint='checkpoints/groupmixformer-small_in1k.pth'))
