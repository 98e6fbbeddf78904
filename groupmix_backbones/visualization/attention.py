"""Attention maps of a query, read from what the attention modules compute: every attention
layer calls its :class:`~groupmix_backbones.models.layers.AttentionWeights` with its weights
while recording (the visualizer hooks it), and a family registers the local terms its layers add
beside attention (depthwise convolutions of the values) with :func:`register_local_term`.

A map is (heads, H, W): the weights with which the output of the query at a cell (row, column)
mixes the values of each key of the layer's H x W map, per head; a local term is added to every
head as its kernel averaged over channels. :func:`equivalent_map` turns them into one map.
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..models.layers import AttentionWeights, recording_attention
from .core import DEFAULT_QUERY, Maps, Query, query_cell, run_with_hooks

#: (module, the query's recorded row as :func:`attention_row` gives it, cell) -> (heads, H, W)
LocalTerm = Callable[[nn.Module, 'Row', Tuple[int, int]], torch.Tensor]
LOCAL_TERMS: Dict[type, LocalTerm] = {}


def register_local_term(module_type: type):
    """Register the decorated local term for attention modules of ``module_type``."""
    def register(function):
        LOCAL_TERMS[module_type] = function
        return function
    return register


def local_term_of(module: nn.Module) -> Optional[LocalTerm]:
    """The local term of ``module``'s class or its nearest registered base class."""
    return next((LOCAL_TERMS[cls] for cls in type(module).__mro__ if cls in LOCAL_TERMS), None)


class Row:
    """The attention of one query as its module computed it: ``weights`` (heads, H, W) on the
    map, ``seen`` (H, W) the keys it could see (its window or stripe, or the whole map)."""

    def __init__(self, weights: torch.Tensor, seen: torch.Tensor):
        self.weights, self.seen = weights, seen

    def region(self) -> Tuple[int, int, int, int]:
        """(top, bottom, left, right) of the keys the query could see."""
        rows, cols = self.seen.any(1).nonzero()[:, 0], self.seen.any(0).nonzero()[:, 0]
        return rows[0].item(), rows[-1].item() + 1, cols[0].item(), cols[-1].item() + 1


def attention_row(record: dict, cell) -> Row:
    """The query at ``cell``'s row of the first image's weights recorded by an
    :class:`AttentionWeights` (its call's keyword arguments and ``weights``), laid on the map:
    keys of a reduced map spread evenly over the cells each was reduced from."""
    (H, W), stride = record['hw_shape'], record.get('key_stride', 1)
    weights = record['weights'][0]
    heads, num_q, num_k = weights.shape[-3:]
    groups = weights.shape[:-3]
    weights = weights.reshape(-1, heads, num_q, num_k)
    queries = record['queries'].expand(*groups, num_q).reshape(-1, num_q)
    keys = record['keys'].expand(*groups, num_k).reshape(-1, num_k)
    group, index = (queries == cell[0] * W + cell[1]).nonzero()[0].tolist()
    keys, real = keys[group], keys[group] >= 0
    h, w = -(-H // stride), -(-W // stride)
    canvas = weights.new_zeros(heads, h * w)
    canvas[:, keys[real]] = weights[group, :, index][:, real]
    seen = torch.zeros(h * w, dtype=torch.bool, device=canvas.device)
    seen[keys[real]] = True
    canvas, seen = canvas.reshape(heads, h, w), seen.reshape(h, w)
    if stride > 1:
        canvas = canvas.repeat_interleave(stride, 1).repeat_interleave(stride, 2) / stride ** 2
        seen = seen.repeat_interleave(stride, 0).repeat_interleave(stride, 1)
    return Row(canvas[:, :H, :W], seen[:H, :W])


def record_attention(model: nn.Module, run: Callable[[], object],
                     probes: Dict[object, AttentionWeights]) -> Dict[object, dict]:
    """``run()`` with the attention weights of ``model`` recorded: per key of ``probes``, the
    keyword arguments and ``weights`` of that probe's last call (a probe not called is left
    out)."""
    with torch.no_grad(), recording_attention(model):
        calls = run_with_hooks(run, probes)
    return {name: dict(kwargs, weights=args[0]) for name, (args, kwargs, _) in calls.items()}


def layer_map(module: nn.Module, record: dict, cell) -> torch.Tensor:
    """(heads, H, W): the recorded attention of the query at ``cell`` plus the module's local
    term, if it has one."""
    row = attention_row(record, cell)
    local = local_term_of(module)
    return row.weights if local is None else row.weights + local(module, row, cell)


def module_attention_map(module: nn.Module, *inputs, cell) -> torch.Tensor:
    """:func:`layer_map` of the query at ``cell`` for ``module(*inputs)`` (an attention module
    taking its map's shape last), e.g. to check a map against the module's output."""
    record = record_attention(module, lambda: module(*inputs), {'': module.attn_weights})['']
    return layer_map(module, record, cell)


def local_term(kernel: torch.Tensor, cell, hw_shape, region=None) -> torch.Tensor:
    """(..., H, W) weights of a convolution ``kernel`` (..., kh, kw) of zero-padded values,
    centred on ``cell``: what the conv adds to the query's output from each key. ``region`` (top,
    bottom, left, right) confines the conv (its window); default the map."""
    H, W = hw_shape
    top, bottom, left, right = region or (0, H, 0, W)
    kh, kw = kernel.shape[-2:]
    y0, x0 = cell[0] - kh // 2, cell[1] - kw // 2  # conv2d: out[i] = sum_o w[o] * v[i + o - pad]
    rows = slice(max(y0, top), min(y0 + kh, bottom, H))
    cols = slice(max(x0, left), min(x0 + kw, right, W))
    out = kernel.new_zeros(*kernel.shape[:-2], H, W)
    out[..., rows, cols] = kernel[..., rows.start - y0:rows.stop - y0,
                                  cols.start - x0:cols.stop - x0]
    return out


def channel_mean_kernel(conv: nn.Conv2d, groups: int = 1) -> torch.Tensor:
    """The kernel of a depthwise ``conv`` averaged over the channels of each of ``groups`` equal
    channel groups (heads): (groups, kh, kw)."""
    return conv.weight[:, 0].reshape(groups, -1, *conv.weight.shape[-2:]).mean(dim=1)


def equivalent_map(weights: torch.Tensor) -> torch.Tensor:
    """(heads, H, W) key weights -> (H, W): averaged over heads, absolute (conv terms can be
    negative) and normalised to sum to 1 over the keys."""
    weights = weights.mean(dim=0).abs()
    return weights / weights.sum().clamp_min(1e-12)


def block_attention_maps(backbone: nn.Module, image: torch.Tensor, query: Optional[Query],
                         blocks: Dict[str, nn.Module]) -> Maps:
    """Titled equivalent attention maps of the query, one per block of ``blocks`` (title ->
    block): the maps of the block's attention modules, averaged when a block has several
    (branches over channel groups)."""
    query = query or DEFAULT_QUERY
    probes = {(title, name): probe for title, block in blocks.items()
              for name, probe in block.named_modules() if isinstance(probe, AttentionWeights)}
    records = record_attention(backbone, lambda: backbone(image), probes)
    branches = {}
    for (title, name), record in records.items():
        module = blocks[title].get_submodule(name.rpartition('.')[0])  # the probe's owner
        cell = query_cell(query, record['hw_shape'])
        branches.setdefault(title, []).append(equivalent_map(layer_map(module, record, cell)))
    return [(title, torch.stack(maps).mean(dim=0)) for title, maps in branches.items()]
