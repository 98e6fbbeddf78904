from .flatten import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from .groupmixformer import GroupMixFormer

__all__ = ['FLattenPVT', 'FLattenPVTv2', 'FLattenSwin', 'FLattenCSWin', 'GroupMixFormer']
