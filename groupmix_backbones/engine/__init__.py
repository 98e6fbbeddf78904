"""Runtime pieces for every Runner and inference API that uses these configs: the
:class:`ResumableCheckpointHook` and :class:`SegLabelCheckHook` (registered in mmengine's HOOKS,
so every scope finds them) and, on
import, the fix that lets the three libraries' inference APIs share a process
(:mod:`.default_scope`)."""
from . import default_scope  # noqa: F401  (patches the inference APIs on import)
from .checkpoint_hook import ResumableCheckpointHook
from .label_check_hook import SegLabelCheckHook

__all__ = ['ResumableCheckpointHook', 'SegLabelCheckHook']
