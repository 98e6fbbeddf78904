"""Safe checkpoint loading for mmengine under torch>=2.6.

mmengine 0.10.7 calls ``torch.load`` with torch's new default ``weights_only=True``, which refuses its
own checkpoints: they hold the message hub's ``HistoryBuffer`` objects and numpy values. Opening
``weights_only=False`` would run any pickled callable. Instead, local checkpoints are loaded with
``weights_only=True`` plus an allowlist of the plain data types that OpenMMLab checkpoints contain;
anything else (``os.system``, say) is refused, unexecuted, with :class:`UnsafeCheckpointError`.
"""
import pickle
import re

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles an object outside the allowlist; nothing in it was executed."""


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    dtype_classes = [type(np.dtype(code)) for code in np.typecodes['All'] if code not in 'O']
    return [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar,
            *dtype_classes]


# HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, 'mean'). Allowing getattr
# is safe under weights_only: what it returns cannot be called unless it is itself allowlisted.
SAFE_GLOBALS = [HistoryBuffer, getattr, *_numpy_globals()]


def add_safe_globals(*objects):
    """Allow more classes or functions in checkpoints you trust (e.g. your own metadata types)."""
    SAFE_GLOBALS.extend(objects)


def safe_torch_load(filename, map_location=None):
    """``torch.load`` with ``weights_only=True`` and :data:`SAFE_GLOBALS` allowed."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r'GLOBAL ([\w.]+)|unrecognized function (.+)', str(error))
        culprit = (found.group(1) or found.group(2)) if found else 'an object outside the allowlist'
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {filename!r}: it pickles {culprit}, which is not plain '
            'checkpoint data (tensors, numbers, strings, containers, numpy arrays, HistoryBuffer). '
            'Nothing in it was executed. If you trust this file and the object, allow it with '
            'groupmix_backbones.checkpoint.add_safe_globals(obj).') from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location=None):
    """mmengine's loader for local paths, made safe (replaces mmengine's own on import)."""
    import os.path as osp
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    return safe_torch_load(filename, map_location)
