# Mask R-CNN + FPN with GroupMixFormer-S, 3x schedule with multi-scale training and random crops.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
          '../../common_cfgs/groupmixformer-small_dense.py']
model = dict(backbone={{_base_.backbone}}, neck=dict(in_channels=[80, 160, 320, 320]))
