# CPU-sized demo: Mask R-CNN with FLatten-PVTv2-B0 on the generated COCO-format shapes dataset
# (common_cfgs/mask-rcnn_fpn_demo-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/mask-rcnn_fpn_demo-recipe.py'
model = dict(
    backbone=dict(type='FLattenPVTv2', arch='b0',
                  init_cfg=dict(checkpoint='work_dirs/flatten-pvtv2-b0_demo/epoch_18.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]))
