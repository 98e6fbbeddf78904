# CPU-sized demo: Mask R-CNN with the reduced GroupMixFormer of
# mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py on the generated COCO-format shapes
# dataset (common_cfgs/mask-rcnn_fpn_demo-recipe.py), the backbone initialised from that
# classification demo.
_base_ = '../../common_cfgs/mask-rcnn_fpn_demo-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', norm_cfg=dict(type='SyncBN', requires_grad=True),
                  norm_outputs=True,
                  arch=dict(embed_dims=[40, 80, 160, 160], depths=[1, 1, 3, 1],
                            mlp_ratios=[4, 4, 4, 4]),
                  init_cfg=dict(checkpoint='work_dirs/groupmixformer-micro_demo/epoch_18.pth')),
    neck=dict(in_channels=[40, 80, 160, 160]))
