from .base import DenseBackbone, Stage
from .flatten import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from .groupmixformer import GroupMixFormer
from .layers import fuse_modules
from .loading import CheckpointMismatchError
from .necks import PointwiseConvPoolNeck
from .sgformer import SGFormer
from .mixers import DepthwiseConvMixer, FocusedLinearMixer
from .unified import (UnifiedBackbone, UnifiedConvNeXt, UnifiedFLatten, UnifiedGroupMix,
                      UnifiedHaloNet, UnifiedInternImage, UnifiedPVT, UnifiedSwin)

__all__ = ['DenseBackbone', 'Stage', 'CheckpointMismatchError', 'FLattenPVT', 'FLattenPVTv2',
           'FLattenSwin', 'FLattenCSWin', 'GroupMixFormer', 'PointwiseConvPoolNeck', 'SGFormer', 'fuse_modules',
           'UnifiedBackbone', 'UnifiedConvNeXt', 'UnifiedHaloNet', 'UnifiedInternImage',
           'UnifiedPVT', 'UnifiedSwin', 'UnifiedGroupMix', 'UnifiedFLatten', 'DepthwiseConvMixer',
           'FocusedLinearMixer']
