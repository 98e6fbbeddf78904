# CPU-sized demo: Mask R-CNN with FLatten-PVTv2-b0 in the GroupMixFormer detection demo (same
# generated data, schedule and mmdet recipe).
_base_ = '../groupmixformer/mask-rcnn_groupmixformer-mini_fpn_demo.py'
model = dict(backbone=dict(_delete_=True, type='FLattenPVTv2', arch='b0'),
             neck=dict(in_channels=[32, 64, 160, 256]))
