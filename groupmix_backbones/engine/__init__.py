"""Runtime pieces for every Runner that uses these configs, registered in mmengine's registries so
that every scope finds them: the :class:`ResumableCheckpointHook` and :class:`SegLabelCheckHook`,
and the recipes' :class:`NoWeightDecayOptimWrapperConstructor`."""
from .checkpoint_hook import ResumableCheckpointHook
from .label_check_hook import SegLabelCheckHook
from .optim_wrapper import NoWeightDecayOptimWrapperConstructor

__all__ = ['ResumableCheckpointHook', 'SegLabelCheckHook', 'NoWeightDecayOptimWrapperConstructor']
