# Mask R-CNN + FPN with FLatten-PVT-T, mmdet's transformer-backbone 1x recipe (AdamW 1e-4,
# weight decay 0.05, no decay on norms).
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
          '../../common_cfgs/flatten-pvt-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[64, 128, 320, 512]))
