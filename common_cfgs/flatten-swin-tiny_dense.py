# FLatten-Swin-T as the backbone of the detection and segmentation configs (leaves set the arch,
# drop path and checkpoint), with the converted ImageNet weights, made with
#   python tools/model_converters/flatten2mmpretrain.py OFFICIAL.pth checkpoints/flatten-swin-tiny_in1k.pth
# Drop path: T 0.2 (mmdet's Swin-T Mask R-CNN), S and B 0.3 (mmseg's Swin UperNet and the
# Swin-B detectors).
custom_imports = dict(imports=['groupmix_backbones'], allow_failed_imports=False)
backbone = dict(_delete_=True, type='FLattenSwin', arch='tiny', drop_path_rate=0.2,
                init_cfg=dict(type='Pretrained', prefix='backbone.',
                              checkpoint='checkpoints/flatten-swin-tiny_in1k.pth'))
