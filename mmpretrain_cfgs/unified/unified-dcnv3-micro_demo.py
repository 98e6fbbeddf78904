# CPU-sized demo: U-InternImage-Micro (DCNv3, its PyTorch sampling on CPU) on the generated shapes
# dataset, the data, schedule and recipe of the GroupMixFormer demo, with the family's classifier
# neck.
_base_ = '../../common_cfgs/classification_demo-recipe.py'
model = dict(backbone=dict(type='UnifiedInternImage', arch='micro', out_indices=(3, )),
             neck=dict(_delete_=True, type='PointwiseConvPoolNeck', in_channels=256),
             head=dict(in_channels=384))
