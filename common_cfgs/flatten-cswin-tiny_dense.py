# FLatten-CSWin-T as the backbone of the detection and segmentation configs (leaves set the arch,
# drop path and checkpoint), with the converted ImageNet weights, made with
#   python tools/model_converters/flatten2mmpretrain.py OFFICIAL.pth checkpoints/flatten-cswin-tiny_in1k.pth
# Drop path: T 0.3, S 0.4, B 0.6, the official CSWin UperNet values.
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
backbone = dict(_delete_=True, type='FLattenCSWin', arch='tiny', drop_path_rate=0.3,
                init_cfg=dict(type='Pretrained', prefix='backbone.',
                              checkpoint='checkpoints/flatten-cswin-tiny_in1k.pth'))
