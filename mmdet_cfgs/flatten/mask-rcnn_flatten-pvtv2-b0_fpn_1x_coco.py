# Mask R-CNN + FPN with FLatten-PVTv2-B0, mmdet's transformer-backbone 1x recipe (AdamW 1e-4,
# weight decay 0.05, no decay on norms).
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
          '../../common_cfgs/flatten-pvtv2-b0_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[32, 64, 160, 256]))
