"""Runtime pieces for every Runner that uses these configs, registered in mmengine's registries so
that every scope finds them: the :class:`ResumableCheckpointHook`, :class:`NormStatsSyncHook` and
:class:`SegLabelCheckHook`, the recipes' :class:`NoWeightDecayOptimWrapperConstructor` and
:class:`InstanceSegTTAModel` (Mask R-CNN test-time augmentation, ``tools/test.py --tta``)."""
from .checkpoint_hook import ResumableCheckpointHook
from .instance_tta import InstanceSegTTAModel
from .label_check_hook import SegLabelCheckHook
from .norm_stats_hook import NormStatsSyncHook
from .optim_wrapper import NoWeightDecayOptimWrapperConstructor

__all__ = ['ResumableCheckpointHook', 'NormStatsSyncHook', 'SegLabelCheckHook',
           'NoWeightDecayOptimWrapperConstructor', 'InstanceSegTTAModel']
