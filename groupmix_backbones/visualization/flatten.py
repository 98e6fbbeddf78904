"""Attention maps of the FLatten hosts, as the official visualizer draws them: for a query, the
equivalent attention of each block, i.e. the normalised focused linear attention plus the
depthwise-convolution term (``dwc``, and CSWin's LePE) in ``L`` stages, the softmax attention of
the host (Swin windows, PVT spatial reduction, CSWin stripes with LePE) in ``S`` stages.

Unlike the official (head 0, the first channel's kernel), heads are averaged and conv kernels
averaged over channels: the map is the weights of the channel-averaged output.
"""
import torch
import torch.nn.functional as F

from ..models.flatten import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from ..models.flatten.common import FocusedLinearAttention, ProjectedLinearAttention
from ..models.flatten.cswin import CSWinLinearAttention, CSWinStripeAttention
from .attention import (block_attention_maps, channel_mean_kernel, local_term,
                        register_layer_map, softmax_row, split_heads)
from .core import register_visualizer

KINDS = {'L': 'linear', 'S': 'softmax'}


def focused_attention(module: FocusedLinearAttention, q, k, hw_shape, cell=None):
    """The normalised focused linear attention of ``module.attend`` on q, k tokens (B, N, C):
    (B, heads, queries, N), rows summing to 1 (up to attend's 1e-6); the one query at ``cell``
    (row, column) when given, else every token."""
    B, N, _ = q.shape
    if cell is not None:
        q = q[:, [cell[0] * hw_shape[1] + cell[1]]]
    k = k + module.resized(module.key_pos_embed, module.pos_hw, hw_shape)
    scale = F.softplus(module.focus_scale)
    q, k = module._focus(q, scale), module._focus(k, scale)
    q, k = (t.reshape(B, t.shape[1], module.num_heads, -1).transpose(1, 2) for t in (q, k))
    normaliser = q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1) + 1e-6
    return q @ k.transpose(-2, -1) / N / normaliser


def linear_key_weights(module: FocusedLinearAttention, q, k, hw_shape, cell) -> torch.Tensor:
    """(heads, H, W): the query's focused attention plus the ``dwc`` term."""
    rows = focused_attention(module, q[:1], k[:1], hw_shape, cell)[0, :, 0]
    return rows.reshape(-1, *hw_shape) + local_term(channel_mean_kernel(module.dwc), cell,
                                                    hw_shape)


@register_layer_map(ProjectedLinearAttention)
def projected_linear_map(module: ProjectedLinearAttention, args, kwargs, cell):
    """PVT and Swin hosts: q and k projected from the block's tokens."""
    x, hw_shape = args[0][:1], tuple(args[1])
    if module.fused_qkv:
        q, k, _ = module.qkv(x).chunk(3, dim=-1)
    else:
        q, (k, _) = module.q(x), module.kv(x).chunk(2, dim=-1)
    return linear_key_weights(module, q, k, hw_shape, cell)


@register_layer_map(CSWinLinearAttention)
def cswin_linear_map(module: CSWinLinearAttention, args, kwargs, cell):
    """CSWin host: focused attention and ``dwc``, plus LePE (per head's channels)."""
    q, k, _, hw_shape = args
    lepe = local_term(channel_mean_kernel(module.lepe, module.num_heads), cell, tuple(hw_shape))
    return linear_key_weights(module, q, k, tuple(hw_shape), cell) + lepe


@register_layer_map(CSWinStripeAttention)
def cswin_stripe_map(module: CSWinStripeAttention, args, kwargs, cell):
    """CSWin softmax branch: the query's stripe (or the whole map) with LePE inside it."""
    q, k, _, (H, W) = args
    s, heads = module.split_size, module.num_heads
    window = {None: (H, W), 0: (H, s), 1: (s, W)}[module.direction]  # as the module's forward
    top, left = cell[0] // window[0] * window[0], cell[1] // window[1] * window[1]
    bottom, right = min(top + window[0], H), min(left + window[1], W)  # padded keys are masked
    keys = k[0].reshape(H, W, -1)[top:bottom, left:right].reshape((bottom - top) * (right - left),
                                                                  -1)
    probs = softmax_row(split_heads(q[0, cell[0] * W + cell[1]][None], heads)[:, 0],
                        split_heads(keys, heads))
    weights = q.new_zeros(heads, H, W)
    weights[:, top:bottom, left:right] = probs.reshape(heads, bottom - top, right - left)
    return weights + local_term(channel_mean_kernel(module.lepe, heads), cell, (H, W),
                                region=(top, bottom, left, right))


@register_visualizer(*(host.__name__ for host in (FLattenPVT, FLattenPVTv2, FLattenSwin,
                                                  FLattenCSWin)), uses_query=True)
def flatten_attention(backbone, image, *, query=None):
    """One map per block, titled ``stage<i>.block<j> linear|softmax`` (from 1)."""
    blocks = {f'stage{i + 1}.block{j + 1} {KINDS[backbone.attn_types[i]]}': block
              for i, stage in enumerate(backbone.stages) for j, block in enumerate(stage.blocks)}
    return block_attention_maps(backbone, image, query, blocks)
