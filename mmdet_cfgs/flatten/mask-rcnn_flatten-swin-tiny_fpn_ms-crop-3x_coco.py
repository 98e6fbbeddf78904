# Mask R-CNN + FPN with FLatten-Swin-T, 3x schedule with multi-scale training and
# random crops (no decay on relative position bias tables either).
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
          '../../common_cfgs/flatten-swin-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rel_pos_table': dict(decay_mult=0.)}))
