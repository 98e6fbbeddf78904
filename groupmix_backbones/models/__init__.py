from .base import DenseBackbone, Stage
from .flatten import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from .groupmixformer import GroupMixFormer
from .loading import CheckpointMismatchError
from .sgformer import SGFormer

__all__ = ['DenseBackbone', 'Stage', 'CheckpointMismatchError', 'FLattenPVT', 'FLattenPVTv2',
           'FLattenSwin', 'FLattenCSWin', 'GroupMixFormer', 'SGFormer']
