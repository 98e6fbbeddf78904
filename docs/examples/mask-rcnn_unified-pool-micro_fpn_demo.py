# Mask R-CNN with U-Pool-Micro on the detection demo, the backbone from the classification demo.
_base_ = '{{$GROUPMIX_BACKBONES:../..}}/mmdet_cfgs/unified/mask-rcnn_unified-dcnv3-micro_fpn_demo.py'
custom_imports = dict(imports=['pool_mixer'], allow_failed_imports=False)
model = dict(backbone=dict(
    type='UnifiedBackbone', arch='micro', mixer=dict(type='PoolMixer', pool_size=3),
    init_cfg=dict(checkpoint='work_dirs/unified-pool-micro_demo/epoch_30.pth')))
