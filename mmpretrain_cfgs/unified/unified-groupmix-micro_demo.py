# CPU-sized demo: U-GroupMix-Micro on the generated shapes dataset with the unified family's demo
# recipe (its classifier neck, parameter groups and 30 epochs; docs/design_notes.md).
_base_ = '../../common_cfgs/classification_demo-unified-recipe.py'
model = dict(backbone=dict(type='UnifiedGroupMix', arch='micro'),
             neck=dict(in_channels=240), head=dict(in_channels=360))
