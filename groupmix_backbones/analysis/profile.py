"""Time and peak memory of a model's inference or training step."""
import ctypes
import gc
import resource
import statistics
import time

import torch

from ..policy.allocator import returning_freed_cpu_memory


def _proc_status_kb(field):
    try:
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))
    except (OSError, StopIteration):
        return None


def reset_peak_rss():
    """Return freed heap to the OS, reset the peak RSS where Linux allows it; return the RSS."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
    rss = _proc_status_kb('VmRSS')
    return rss * 1024 if rss is not None else peak_rss()


def peak_rss():
    hwm = _proc_status_kb('VmHWM')
    return (hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def tensors(out):
    """All tensors in a (nested) model output."""
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in tensors(item)]
    return []


def make_step(model, inputs, mode):
    """One inference step (eval, no grad) or training step (train mode, forward, backward of the
    sum of the means of all floating output tensors, AdamW step) of ``model`` on ``inputs``."""
    if mode != 'train':
        model.eval()

        def step():
            with torch.no_grad():
                model(inputs)
        return step
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = sum(t.float().mean() for t in tensors(model(inputs)) if t.is_floating_point())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def _timed(step, repeat, cuda):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def _memory_mark(cuda):
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return reset_peak_rss()


def _memory_peak(cuda, mark):
    return torch.cuda.max_memory_allocated() - mark if cuda else max(peak_rss() - mark, 0)


def measure(model, inputs, mode, repeat, warmup):
    """Return (seconds per iteration, median; peak memory in bytes) of ``mode`` on ``inputs``:
    CUDA max allocated (weights included), or on CPU the peak RSS increase over the warm-up and
    timed iterations."""
    cuda = inputs.is_cuda
    step = make_step(model, inputs, mode)
    mark = _memory_mark(cuda)
    for _ in range(warmup):
        step()
    times = _timed(step, repeat, cuda)
    return statistics.median(times), _memory_peak(cuda, 0 if cuda else mark)


def step_peak_memory(step, cuda: bool) -> int:
    """Peak memory of one call of ``step`` above what was in use before it, in bytes: CUDA max
    allocated, or on CPU the peak RSS with glibc returning freed blocks (so that it follows the
    live tensors whatever the process's malloc setting)."""
    if cuda:
        mark = _memory_mark(cuda)
        step()
        return _memory_peak(cuda, mark)
    with returning_freed_cpu_memory():
        mark = reset_peak_rss()
        step()
        return max(peak_rss() - mark, 0)


def measure_alternately(models, inputs, mode, *, rounds, repeat, warmup):
    """Time several models on the same inputs in turns (``rounds`` times ``repeat`` steps each,
    after ``warmup`` steps each), so that a busy machine slows all alike. Returns per model
    (seconds per step, median over all timed steps; :func:`step_peak_memory` of one more step:
    activations and workspace, weights and optimizer state excluded)."""
    cuda = inputs.is_cuda
    steps = [make_step(model, inputs, mode) for model in models]
    for step in steps:
        for _ in range(warmup):
            step()
    times = [[] for _ in models]
    for _ in range(rounds):
        for i, step in enumerate(steps):
            times[i] += _timed(step, repeat, cuda)
    return [(statistics.median(t), step_peak_memory(step, cuda)) for t, step in zip(times, steps)]
