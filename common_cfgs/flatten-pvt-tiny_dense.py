# FLatten-PVT-T as the backbone of the detection and segmentation configs (leaves set the arch, drop
# path and checkpoint), with the converted ImageNet weights, made with
#   python tools/model_converters/flatten2mmpretrain.py OFFICIAL.pth checkpoints/flatten-pvt-tiny_in1k.pth
# Drop path 0.1 for every size, as mmdet's PVT configs (the classifiers: T/S 0.1, M 0.3).
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
backbone = dict(_delete_=True, type='FLattenPVT', arch='tiny', drop_path_rate=0.1,
                init_cfg=dict(type='Pretrained', prefix='backbone.',
                              checkpoint='checkpoints/flatten-pvt-tiny_in1k.pth'))
