# CPU-sized demo: UperNet with FLatten-PVTv2-b0 in the GroupMixFormer segmentation demo (same
# generated data, schedule and mmseg recipe), initialised from the FLatten classification demo.
_base_ = '../groupmixformer/upernet_groupmixformer-mini_demo.py'
model = dict(backbone=dict(_delete_=True, type='FLattenPVTv2', arch='b0',
                           init_cfg=dict(type='Pretrained', prefix='backbone.',
                                         checkpoint='work_dirs/flatten-pvtv2-b0_demo/epoch_6.pth')),
             decode_head=dict(in_channels=[32, 64, 160, 256]), auxiliary_head=dict(in_channels=160))
