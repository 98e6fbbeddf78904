# FLatten-PVTv2-B0 as the backbone of the detection and segmentation configs (leaves set the arch
# and checkpoint), with the converted ImageNet weights, made with
#   python tools/model_converters/flatten2mmpretrain.py OFFICIAL.pth checkpoints/flatten-pvtv2-b0_in1k.pth
# Drop path 0.1 for B0-B2, as the classifiers and mmdet's PVTv2 configs.
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
backbone = dict(_delete_=True, type='FLattenPVTv2', arch='b0', drop_path_rate=0.1,
                init_cfg=dict(type='Pretrained', prefix='backbone.',
                              checkpoint='checkpoints/flatten-pvtv2-b0_in1k.pth'))
