"""One decorator that registers a backbone in the MODELS registries of mmpretrain, mmdet and mmseg,
and the registry of spatial token mixers (:data:`MIXERS`) that ``UnifiedBackbone`` builds its blocks
around."""
from typing import List

from mmdet.registry import MODELS as DET_MODELS
from mmengine.registry import Registry
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS

SCOPED_MODEL_REGISTRIES = (PRETRAIN_MODELS, DET_MODELS, SEG_MODELS)
#: every backbone class of ours with named archs of its own, in registration order
BACKBONES: List[type] = []
#: spatial token mixers: ``nn.Module`` classes built as ``Mixer(dim, **settings)`` and called as
#: ``mixer(tokens, hw_shape)`` on tokens (B, H*W, C) of a map of ``hw_shape`` (H, W), row-major,
#: returning tokens of the same shape (docs/mixers.md). Register one with
#: ``@MIXERS.register_module()``.
MIXERS = Registry('spatial token mixer', locations=['groupmix_backbones.models'])


def register_backbone(cls, *, catalogued: bool = True):
    """Register ``cls`` under its class name in every task's MODELS registry; ``catalogued``: also
    in :data:`BACKBONES` (walked by the contract tests; False for a backbone that needs more than
    an arch, such as ``UnifiedBackbone`` and its mixer)."""
    for registry in SCOPED_MODEL_REGISTRIES:
        registry.register_module(module=cls)
    if catalogued:
        BACKBONES.append(cls)
    return cls
