# CPU-sized demo: a reduced SG-Former ("tiny": half SG-Former-S's widths, two blocks in stages 1-3,
# one in stage 4; not a released arch) on the generated shapes dataset (tools/make_demo_data.py),
# the data, schedule and recipe of the GroupMixFormer demo.
_base_ = '../../common_cfgs/classification_demo-recipe.py'
model = dict(
    backbone=dict(type='SGFormer', out_indices=(3, ),
                  arch=dict(embed_dims=[32, 64, 128, 256], depths=[2, 2, 2, 1],
                            num_heads=[2, 2, 4, 8], mlp_ratios=[4, 4, 4, 4])),
    head=dict(in_channels=256))
