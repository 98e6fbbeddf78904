# CPU-sized demo: FLatten-PVTv2-b0 in the GroupMixFormer classification demo (same generated data,
# schedule and recipe; see tools/make_demo_data.py).
_base_ = '../groupmixformer/groupmixformer-mini_demo.py'
model = dict(backbone=dict(_delete_=True, type='FLattenPVTv2', arch='b0', out_indices=(3, )),
             head=dict(in_channels=256))
