# CPU-sized demo: FLatten-PVTv2-B0 on the generated shapes dataset (tools/make_demo_data.py), the
# data, schedule and recipe of the GroupMixFormer demo.
_base_ = '../../common_cfgs/classification_demo-recipe.py'
model = dict(backbone=dict(type='FLattenPVTv2', arch='b0', out_indices=(3, )),
             head=dict(in_channels=256))
