# CPU-sized demo: a reduced GroupMixFormer ("micro": GroupMixFormer-M's widths with 1/1/3/1 blocks
# instead of 3/3/12/4, not a released arch; three times M's speed on 2 cores) on the generated
# shapes dataset (tools/make_demo_data.py).
_base_ = '../../common_cfgs/classification_demo-recipe.py'
model = dict(
    backbone=dict(type='GroupMixFormer', out_indices=(3, ), final_norm=True,
                  arch=dict(embed_dims=[40, 80, 160, 160], depths=[1, 1, 3, 1],
                            mlp_ratios=[4, 4, 4, 4])),
    head=dict(in_channels=160))
