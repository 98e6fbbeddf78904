# U-Pool-Micro: your mixer (pool_mixer.py, imported by custom_imports from PYTHONPATH) in the unified
# architecture, on the unified family's classification demo (widths of UnifiedBackbone's micro).
# GROUPMIX_BACKBONES: the repository's folder (default: this file's, two levels up).
_base_ = '{{$GROUPMIX_BACKBONES:../..}}/mmpretrain_cfgs/unified/unified-dcnv3-micro_demo.py'
custom_imports = dict(imports=['pool_mixer'], allow_failed_imports=False)
model = dict(backbone=dict(type='UnifiedBackbone', arch='micro',
                           mixer=dict(type='PoolMixer', pool_size=3)))
