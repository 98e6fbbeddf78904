# CPU-sized demo: UperNet with FLatten-PVTv2-b0 in the GroupMixFormer segmentation demo (same
# generated data, schedule and mmseg recipe).
_base_ = '../groupmixformer/upernet_groupmixformer-mini_demo.py'
model = dict(backbone=dict(_delete_=True, type='FLattenPVTv2', arch='b0'),
             decode_head=dict(in_channels=[32, 64, 160, 256]), auxiliary_head=dict(in_channels=160))
