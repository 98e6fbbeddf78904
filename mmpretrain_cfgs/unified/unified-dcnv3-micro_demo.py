# CPU-sized demo: U-InternImage-Micro (DCNv3, its PyTorch sampling on CPU) on the generated shapes
# dataset with the unified family's demo recipe (its classifier neck, parameter groups and 30
# epochs; docs/design_notes.md).
_base_ = '../../common_cfgs/classification_demo-unified-recipe.py'
model = dict(backbone=dict(type='UnifiedInternImage', arch='micro'),
             neck=dict(in_channels=256), head=dict(in_channels=384))
