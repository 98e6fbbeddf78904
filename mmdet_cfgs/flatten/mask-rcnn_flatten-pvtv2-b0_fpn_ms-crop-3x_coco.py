# Mask R-CNN + FPN with FLatten-PVTv2-B0, 3x schedule with multi-scale training and random crops.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
          '../../common_cfgs/flatten-pvtv2-b0_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[32, 64, 160, 256]))
