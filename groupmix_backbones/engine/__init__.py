"""Runtime pieces for every Runner that uses these configs, registered in mmengine's registries so
that every scope finds them: the :class:`ResumableCheckpointHook`, :class:`GracefulStopHook`
(preemption, non-finite losses) with :class:`ResumableEpochBasedTrainLoop`,
:class:`NormStatsSyncHook` and :class:`SegLabelCheckHook`, the recipes'
:class:`NoWeightDecayOptimWrapperConstructor` and :class:`InstanceSegTTAModel` (Mask R-CNN
test-time augmentation, ``tools/test.py --tta``)."""
from .checkpoint_hook import ResumableCheckpointHook
from .instance_tta import InstanceSegTTAModel
from .label_check_hook import SegLabelCheckHook
from .loops import ResumableEpochBasedTrainLoop
from .norm_stats_hook import NormStatsSyncHook
from .optim_wrapper import NoWeightDecayOptimWrapperConstructor
from .stop_hook import GracefulStopHook, NonFiniteLossError, Preempted

__all__ = ['ResumableCheckpointHook', 'GracefulStopHook', 'ResumableEpochBasedTrainLoop',
           'NonFiniteLossError', 'Preempted', 'NormStatsSyncHook', 'SegLabelCheckHook',
           'NoWeightDecayOptimWrapperConstructor', 'InstanceSegTTAModel']
