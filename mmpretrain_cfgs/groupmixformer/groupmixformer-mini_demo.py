# CPU-sized demo: GroupMixFormer-M on the generated shapes dataset (tools/make_demo_data.py).
_base_ = '../../common_cfgs/classification_demo-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', arch='mini', drop_path_rate=0.0, out_indices=(3, ),
                  final_norm=True),
    head=dict(in_channels=160))
