"""Runtime pieces for every Runner that uses these configs: the :class:`ResumableCheckpointHook`
and :class:`SegLabelCheckHook` (registered in mmengine's HOOKS, so every scope finds them)."""
from .checkpoint_hook import ResumableCheckpointHook
from .label_check_hook import SegLabelCheckHook

__all__ = ['ResumableCheckpointHook', 'SegLabelCheckHook']
