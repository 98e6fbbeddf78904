"""Attention maps of a query, recomputed from the inputs a forward hook saw and the attention
module's own parameters: the shared softmax layers here, family layers registered with
:func:`register_layer_map`.

A layer map is ``(module, args, kwargs, cell) -> (heads, H, W)``: the weights with which the
output of the query at ``cell`` (row, column) mixes the values of each key of the layer's H x W
map, per head; local terms (depthwise convolutions of the values) are added to every head as the
kernel averaged over channels. :func:`equivalent_map` turns them into one map over the keys.
"""
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn

from ..models.layers import (ShiftedWindowAttention, SpatialReductionAttention, image_to_tokens,
                             pad_to_multiple, relative_position_index, shifted_window_mask,
                             tokens_to_image)
from .core import DEFAULT_QUERY, Maps, Query, query_cell, run_with_hooks

LayerMap = Callable[..., torch.Tensor]
LAYER_MAPS: Dict[type, LayerMap] = {}


def register_layer_map(module_type: type):
    """Register the decorated layer map for attention modules of ``module_type``."""
    def register(function):
        LAYER_MAPS[module_type] = function
        return function
    return register


def layer_map_of(module: nn.Module) -> Optional[LayerMap]:
    """The layer map of ``module``'s class or its nearest registered base class."""
    return next((LAYER_MAPS[cls] for cls in type(module).__mro__ if cls in LAYER_MAPS), None)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Tokens (N, C) -> (heads, N, C / heads)."""
    return x.reshape(x.shape[0], num_heads, -1).transpose(0, 1)


def softmax_row(q: torch.Tensor, k: torch.Tensor, bias=None) -> torch.Tensor:
    """Softmax attention of one query per head, q (heads, d), over keys k (heads, n, d), scaled by
    ``d ** -0.5`` as ``scaled_dot_product_attention``, plus an additive ``bias`` (heads, n)."""
    logits = (k @ q[:, :, None])[..., 0] * q.shape[-1] ** -0.5
    return (logits if bias is None else logits + bias).softmax(dim=-1)


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
    block): the maps of the block's attention modules (those with a layer map), averaged when a
    block has several (branches over channel groups)."""
    query = query or DEFAULT_QUERY
    attention = {title: {name: module for name, module in block.named_modules()
                         if layer_map_of(module) is not None} for title, block in blocks.items()}
    hooked = {(title, name): module for title, modules in attention.items()
              for name, module in modules.items()}
    inputs = run_with_hooks(backbone, image, hooked)
    maps = []
    for title, modules in attention.items():
        branches = []
        for name, module in modules.items():
            if (title, name) not in inputs:
                continue
            args, kwargs = inputs[title, name]
            hw_shape = tuple(kwargs.get('hw_shape', args[-1]))
            branches.append(equivalent_map(layer_map_of(module)(
                module, args, kwargs, query_cell(query, hw_shape))))
        if branches:
            maps.append((title, torch.stack(branches).mean(dim=0)))
    return maps


@register_layer_map(ShiftedWindowAttention)
def shifted_window_map(module: ShiftedWindowAttention, args, kwargs, cell) -> torch.Tensor:
    """Swin window attention: the query's (shifted) window, with relative position bias and the
    shift mask, on the map; zero outside the window."""
    x, (H, W) = args[0][:1], args[1]
    w, heads = module.window_size, module.num_heads
    shift = w // 2 if module.shifted and min(H, W) > w else 0  # as the module's forward
    grid = pad_to_multiple(x.reshape(1, H, W, -1), w, channels_last=True)[0]
    Hp, Wp = grid.shape[:2]
    grid = grid.roll((-shift, -shift), dims=(0, 1))
    row, col = (cell[0] - shift) % Hp, (cell[1] - shift) % Wp  # the query in the rolled map
    top, left = row // w * w, col // w * w
    q, k, _ = module.qkv(grid[top:top + w, left:left + w].reshape(w * w, -1)).chunk(3, dim=-1)
    index = (row - top) * w + col - left
    bias = module.rel_pos_table[relative_position_index(w, x.device)[index]].T  # (heads, n)
    mask = shifted_window_mask((H, W), (Hp, Wp), w, shift, x.device)
    if mask is not None:
        bias = bias + mask[row // w * (Wp // w) + col // w, index]
    probs = softmax_row(split_heads(q, heads)[:, index], split_heads(k, heads), bias)
    canvas = x.new_zeros(heads, Hp, Wp)
    canvas[:, top:top + w, left:left + w] = probs.reshape(heads, w, w)
    return canvas.roll((shift, shift), dims=(1, 2))[:, :H, :W]


@register_layer_map(SpatialReductionAttention)
def spatial_reduction_map(module: SpatialReductionAttention, args, kwargs, cell) -> torch.Tensor:
    """PVT spatial-reduction attention: keys of the map reduced ``sr_ratio`` times, each key's
    weight spread evenly over the ``sr_ratio`` x ``sr_ratio`` cells it was reduced from."""
    x, (H, W) = args[0][:1], args[1]
    heads, r = module.num_heads, module.sr_ratio
    q = split_heads(module.q(x[0, cell[0] * W + cell[1]][None]), heads)[:, 0]
    keys = x
    if r > 1:
        reduced = module.sr(pad_to_multiple(tokens_to_image(x, (H, W)), r))
        keys = module.norm(image_to_tokens(reduced))
    k, _ = module.kv(keys[0]).chunk(2, dim=-1)
    probs = softmax_row(q, split_heads(k, heads))
    if r == 1:
        return probs.reshape(heads, H, W)
    h, w = -(-H // r), -(-W // r)
    spread = probs.reshape(heads, h, w).repeat_interleave(r, 1).repeat_interleave(r, 2) / r ** 2
    return spread[:, :H, :W]
