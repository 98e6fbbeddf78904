# Mask R-CNN + FPN with FLatten-Swin-T, mmdet's transformer-backbone 1x recipe (AdamW 1e-4,
# weight decay 0.05, no decay on norms and relative position bias tables).
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
          '../../common_cfgs/flatten-swin-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rel_pos_table': dict(decay_mult=0.)}))
