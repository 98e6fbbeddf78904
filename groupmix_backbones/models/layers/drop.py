"""Stochastic depth."""
from typing import List, Sequence

import torch.nn as nn
from timm.layers import DropPath


def drop_path_schedule(drop_path_rate: float, depths: Sequence[int]) -> List[List[float]]:
    """Per-stage lists of drop-path rates rising linearly from 0 to ``drop_path_rate`` over all
    blocks (plain Python: also under a ``torch.device('meta')`` context)."""
    total = sum(depths)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    out, start = [], 0
    for depth in depths:
        out.append(rates[start:start + depth])
        start += depth
    return out


def drop_path(rate: float) -> nn.Module:
    """DropPath of ``rate``, Identity when 0."""
    return DropPath(rate) if rate > 0 else nn.Identity()
