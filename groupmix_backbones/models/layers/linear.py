"""The linear layer of every block: ``nn.Linear`` computed the faster way on CPU."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .shape import exporting

MIN_ROWS = 128  # fewer rows (a pooled vector, a class token): F.linear


def rows_as_conv(x: torch.Tensor) -> bool:
    """Whether ``x`` (..., C) goes through the 1x1 convolution: on CPU, float32 or bfloat16, many
    rows, eager (tracing, exporting and compiling see F.linear, the op counters and exporters
    know)."""
    if exporting() or torch.jit.is_tracing() or torch.jit.is_scripting() or \
            torch.compiler.is_compiling():  # first: the row count below is symbolic there
        return False
    return (x.device.type == 'cpu' and x.dtype in (torch.float32, torch.bfloat16)
            and x.numel() >= MIN_ROWS * x.shape[-1])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, init and name, so ``init_cfg`` layer='Linear' finds it)
    that on CPU runs the rows as a 1x1 convolution over their channels-last view: oneDNN's
    convolution takes half the time of ``addmm`` at these backbones' widths, in the forward and
    the backward (docs/benchmarks.md). Same result up to float rounding; F.linear elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not rows_as_conv(x):
            return F.linear(x, self.weight, self.bias)
        rows = x.reshape(1, -1, 1, self.in_features).permute(0, 3, 1, 2)  # (1, C, rows, 1)
        out = F.conv2d(rows, self.weight[:, :, None, None], self.bias)
        return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], self.out_features)
