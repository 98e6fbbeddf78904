"""Time and peak memory of a model's inference or training step."""
import ctypes
import gc
import resource
import statistics
import time

import torch


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


def measure(model, inputs, mode, repeat, warmup):
    """Return (seconds per iteration, median; peak memory in bytes) of ``mode`` on ``inputs``."""
    cuda = inputs.is_cuda
    optimizer = None
    if mode == 'train':
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    else:
        model.eval()

    def step():
        if optimizer is None:
            with torch.no_grad():
                model(inputs)
            return
        loss = sum(t.float().mean() for t in tensors(model(inputs)) if t.is_floating_point())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = reset_peak_rss()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated() if cuda else max(peak_rss() - base, 0)
    return statistics.median(times), memory
