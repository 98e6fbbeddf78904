# CPU-sized demo: Mask R-CNN with U-GroupMix-Micro on the generated COCO-format shapes dataset
# (common_cfgs/mask-rcnn_fpn_demo-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/mask-rcnn_fpn_demo-recipe.py'
model = dict(
    backbone=dict(type='UnifiedGroupMix', arch='micro',
                  init_cfg=dict(checkpoint='work_dirs/unified-groupmix-micro_demo/epoch_30.pth')),
    neck=dict(in_channels=[30, 60, 120, 240]))
