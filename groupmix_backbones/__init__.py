"""groupmix_backbones: recent vision backbones for mmpretrain, mmdet and mmseg.

Importing the package registers every backbone in the three libraries' MODELS registries and makes
mmengine's checkpoint loading safe under torch>=2.6 (see :mod:`groupmix_backbones.checkpoint`).
"""
from . import checkpoint  # noqa: F401  (installs the safe checkpoint loader)
from .models import *  # noqa: F401,F403

__version__ = '0.1.0'
