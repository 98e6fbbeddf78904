# Mask R-CNN + FPN with FLatten-CSWin-T, 3x schedule with multi-scale training and random crops.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
          '../../common_cfgs/flatten-cswin-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[64, 128, 256, 512]))
