"""One decorator that registers a backbone in the MODELS registries of mmpretrain, mmdet and mmseg."""
from typing import List

from mmdet.registry import MODELS as DET_MODELS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS

SCOPED_MODEL_REGISTRIES = (PRETRAIN_MODELS, DET_MODELS, SEG_MODELS)
BACKBONES: List[type] = []  # every backbone class of ours, in registration order


def register_backbone(cls):
    """Register ``cls`` under its class name in every task's MODELS registry."""
    for registry in SCOPED_MODEL_REGISTRIES:
        registry.register_module(module=cls)
    BACKBONES.append(cls)
    return cls
