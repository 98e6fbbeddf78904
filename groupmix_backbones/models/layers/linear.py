"""The linear layer of every block: ``nn.Linear`` computed the faster way on CPU."""
import os
import time
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .shape import exporting

MIN_ROWS = 128  # fewer rows (a pooled vector, a class token): F.linear
#: how many rows go on CPU: ``'conv'`` (the default), ``'linear'`` or ``'auto'`` (the faster of
#: the two for each shape, timed once per process, as cuDNN's benchmark mode chooses: opt-in like
#: it, since timings differ between processes, and so would a resumed run's or a test's rounding
#: from its training's); environment variable ``GROUPMIX_LINEAR_KERNEL``
CPU_KERNEL = os.environ.get('GROUPMIX_LINEAR_KERNEL', 'conv')
if CPU_KERNEL not in ('conv', 'linear', 'auto'):
    raise ValueError(f"GROUPMIX_LINEAR_KERNEL={CPU_KERNEL!r}: use 'conv', 'linear' or 'auto'")
#: per (in, out, bias, dtype, rows rounded up to a power of 2, threads): whether the conv is faster
_CONV_FASTER: Dict[Tuple, bool] = {}


def rows_as_conv(x: torch.Tensor, weight: torch.Tensor = None, bias=None) -> bool:
    """Whether ``x`` (..., C) goes through the 1x1 convolution: on CPU, float32 or bfloat16, many
    rows, eager (tracing, exporting and compiling see F.linear, the op counters and exporters
    know), and by :data:`CPU_KERNEL` (``'auto'``: where it is the faster kernel here for
    ``weight``'s shape at this row count)."""
    if exporting() or torch.jit.is_tracing() or torch.jit.is_scripting() or \
            torch.compiler.is_compiling():  # first: the row count below is symbolic there
        return False
    if not (x.device.type == 'cpu' and x.dtype in (torch.float32, torch.bfloat16)
            and x.numel() >= MIN_ROWS * x.shape[-1]):
        return False
    if CPU_KERNEL != 'auto' or weight is None:
        return CPU_KERNEL != 'linear'
    rows = x.numel() // x.shape[-1]
    key = (*weight.shape, bias is not None, x.dtype, 1 << (rows - 1).bit_length(),
           torch.get_num_threads())
    if key not in _CONV_FASTER:
        _CONV_FASTER[key] = conv_is_faster(key[-2], weight, bias, x.dtype)
    return _CONV_FASTER[key]


def conv_is_faster(rows: int, weight: torch.Tensor, bias, dtype, repeat: int = 3) -> bool:
    """Time ``rows`` random rows through F.linear and through the 1x1 convolution, in turns
    (best of ``repeat`` after one warm-up each); whether the convolution took less time."""
    with torch.no_grad():
        x = torch.randn(rows, weight.shape[1], dtype=dtype)
        weight = weight.detach().to(dtype)
        bias = None if bias is None else bias.detach().to(dtype)
        kernels = (lambda: F.linear(x, weight, bias), lambda: _conv_rows(x, weight, bias))
        best = [float('inf')] * 2
        for step in range(repeat + 1):
            for i, kernel in enumerate(kernels):
                start = time.perf_counter()
                kernel()
                if step:  # (the first: warm-up)
                    best[i] = min(best[i], time.perf_counter() - start)
    return best[1] < best[0]


def _conv_rows(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """F.linear(x, weight, bias) as a 1x1 convolution over the rows' channels-last view."""
    rows = x.reshape(1, -1, 1, weight.shape[1]).permute(0, 3, 1, 2)  # (1, C, rows, 1)
    out = F.conv2d(rows, weight[:, :, None, None], bias)  # (as Linear.on_map)
    return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, init and name, so ``init_cfg`` layer='Linear' finds it)
    that on CPU may run the rows as a 1x1 convolution over their channels-last view: where
    ``addmm`` is slow, oneDNN's convolution takes half its time at these backbones' widths, in
    the forward and the backward (docs/benchmarks.md); where it is not, F.linear. Which one is
    timed once per shape (:data:`CPU_KERNEL`). Same result up to float rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not rows_as_conv(x, self.weight, self.bias):
            return F.linear(x, self.weight, self.bias)
        return _conv_rows(x, self.weight, self.bias)

    def on_map(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on a map's channels, (B, in, H, W) -> (B, out, H, W): a 1x1 convolution."""
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)
