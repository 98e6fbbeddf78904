# CPU-sized demo: U-GroupMix-Micro on the generated shapes dataset with the unified family's demo
# recipe (mmpretrain_cfgs/unified/unified-dcnv3-micro_demo.py: its classifier neck, parameter groups
# and 30 epochs; docs/design_notes.md).
_base_ = './unified-dcnv3-micro_demo.py'
model = dict(backbone=dict(type='UnifiedGroupMix', arch='micro'),
             neck=dict(in_channels=240), head=dict(in_channels=360))
