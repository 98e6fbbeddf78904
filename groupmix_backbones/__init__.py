"""groupmix_backbones: recent vision backbones for mmpretrain, mmdet and mmseg.

Importing the package registers every backbone in the three libraries' MODELS registries, makes
mmengine's checkpoint loading safe under torch>=2.6 (see :mod:`groupmix_backbones.checkpoint`),
registers the engine hooks and lets the libraries' inference APIs share one process
(see :mod:`groupmix_backbones.engine`).
"""
from . import checkpoint  # noqa: F401  (installs the safe checkpoint loader)
from . import engine  # noqa: F401  (hooks; inference APIs of the three libraries in one process)
from .models import *  # noqa: F401,F403

__version__ = '0.1.0'
