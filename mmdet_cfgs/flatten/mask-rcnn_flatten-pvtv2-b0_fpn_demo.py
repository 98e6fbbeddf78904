# CPU-sized demo: Mask R-CNN with FLatten-PVTv2-b0 in the GroupMixFormer detection demo (same
# generated data, schedule and mmdet recipe), initialised from the FLatten classification demo.
_base_ = '../groupmixformer/mask-rcnn_groupmixformer-mini_fpn_demo.py'
model = dict(backbone=dict(_delete_=True, type='FLattenPVTv2', arch='b0',
                           init_cfg=dict(type='Pretrained', prefix='backbone.',
                                         checkpoint='work_dirs/flatten-pvtv2-b0_demo/epoch_6.pth')),
             neck=dict(in_channels=[32, 64, 160, 256]))
