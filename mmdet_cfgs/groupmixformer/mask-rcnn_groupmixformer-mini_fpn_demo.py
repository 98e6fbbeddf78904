# CPU-sized demo: Mask R-CNN with GroupMixFormer-M on the generated COCO-format shapes dataset
# (common_cfgs/mask-rcnn_fpn_demo-recipe.py), the backbone initialised from the classification demo.
_base_ = '../../common_cfgs/mask-rcnn_fpn_demo-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='mini', drop_path_rate=0.0,
                  norm_cfg=dict(type='SyncBN', requires_grad=True), norm_outputs=True,
                  init_cfg=dict(checkpoint='work_dirs/groupmixformer-mini_demo/epoch_6.pth')),
    neck=dict(in_channels=[40, 80, 160, 160]))
