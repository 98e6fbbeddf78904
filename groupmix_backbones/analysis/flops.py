"""FLOPs as mmengine's (fvcore's) counter counts them (one multiply-add is one FLOP), plus softmax
attention through ``scaled_dot_product_attention``, counted as the two matmuls of the written-out
attention (``q @ k^T``, ``attn @ v``); ops the counter has no rule for are reported, not hidden."""
from collections import Counter
from math import prod
from typing import Any, List, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """q (..., L, E), k (..., S, E), v (..., S, Ev): ``prod(...) * L * S * (E + Ev)``."""
    q, k, v = (get_shape(value) for value in inputs[:3])
    batch = prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops(model: torch.nn.Module, inputs) -> Tuple[int, Counter]:
    """``(FLOPs, Counter of op name -> calls it could not count)`` of ``model(inputs)``."""
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analyzer.total(), Counter(analyzer.unsupported_ops())
