"""groupmix_backbones: recent vision backbones for mmpretrain, mmdet and mmseg.

Importing the package registers every backbone in the three libraries' MODELS registries and the
engine's hooks and optimizer constructor, and applies :mod:`groupmix_backbones.policy`: safe
checkpoint loading for every mmengine URL scheme, the fix that lets the libraries' inference APIs
share one process and our configs as ``groupmix_backbones::`` package references (docs/checkpoints.md,
"What importing groupmix_backbones changes"). Every backbone is
also registered in timm's model registry (:mod:`groupmix_backbones.timm_models`).
"""
from . import policy  # noqa: F401  (everything this package changes in other libraries)
from . import engine  # noqa: F401  (hooks)
from .models import *  # noqa: F401,F403
from .registry import MIXERS  # noqa: F401  (spatial token mixers of UnifiedBackbone)
from . import timm_models  # noqa: F401  (timm.create_model names)

__version__ = '0.1.0'
