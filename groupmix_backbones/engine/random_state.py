"""The random state of a process as plain checkpoint data (lists, tuples, numbers, tensors)."""
import random

import numpy as np
import torch


def get_random_state(cuda: bool = True) -> dict:
    """Python's, numpy's and torch's (CPU and, if ``cuda``, every visible GPU) random state.
    Dataloader workers pass ``cuda=False``: a forked process must not touch CUDA."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = dict(python=random.getstate(), numpy=(name, key.tolist(), pos, has_gauss, gauss),
                 torch=torch.get_rng_state())
    if cuda and torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict, cuda: bool = True) -> bool:
    """Restore a state from :func:`get_random_state` (the GPU generators only if ``cuda``).
    Returns False when the GPU generators could not be restored because this process sees
    another number of GPUs than the saving one did."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if not cuda:
        return True
    gpu_states = state.get('cuda', [])
    if len(gpu_states) != (torch.cuda.device_count() if torch.cuda.is_available() else 0):
        return False
    if gpu_states:
        torch.cuda.set_rng_state_all(gpu_states)
    return True
