"""Softmax attention layers shared by the families, all through ``scaled_dot_product_attention``."""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norm import build_norm
from .shape import (SavedGrids, exporting, exporting_only, image_to_tokens, map_windows,
                    pad_to_multiple, roll_map, tokens_to_image, window_cells, window_partition,
                    window_reverse)
from .linear import Linear

MASK_VALUE = -1e4  # additive mask of keys a query must not see (finite: no NaN rows, fits fp16)


def check_heads(dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}.')


class AttentionWeights(nn.Module):
    """Where an attention's weights can be read (a forward hook on this module sees them).

    An attention module holds one as ``attn_weights``. While :attr:`recording` is on (see
    :func:`recording_attention`), the module computes its weights explicitly and calls it with
    ``weights`` (B, *groups, heads, queries, keys) (groups: windows or stripes, if any), the map
    cells of its ``queries`` (*groups, queries) and ``keys`` (*groups, keys) as flat indices
    ``row * W + col`` (-1: padding) of the ``hw_shape`` map, and ``key_stride``: keys lie on the
    map reduced that many times (ceil). Otherwise nothing is computed twice: softmax attention takes SDPA's fused path.
    """

    recording = False

    def forward(self, weights, *, queries, keys, hw_shape, key_stride: int = 1):
        return weights

    def recorder(self, cells, keep: list = None):
        """The ``record`` of :func:`softmax_attention` for the attention holding this probe:
        while recording, calls the probe with the weights and the keywords ``cells()`` returns
        (computed only then); with a list ``keep``, also appends the weights, detached, to it
        (an attention that uses its weights beyond the output). None when neither: SDPA's fused
        path."""
        recording = self.recording
        if not recording and keep is None:
            return None

        def record(weights):
            if keep is not None:
                keep.append(weights.detach())
            if recording:
                self(weights, **cells())
        return record


def map_probe_cells(hw_shape, num_keys: int, *, key_stride: int = 1, keys=None, device=None):
    """The cell keywords of :class:`AttentionWeights` for an attention of every token of a
    ``hw_shape`` map to ``num_keys`` keys: those of the map reduced ``key_stride`` times, or the
    cells ``keys`` when given (-1: keys with no cell)."""
    queries = torch.arange(hw_shape[0] * hw_shape[1], device=device)
    keys = torch.arange(num_keys, device=device) if keys is None else keys
    return dict(queries=queries, keys=keys, hw_shape=tuple(hw_shape), key_stride=key_stride)


def window_probe_cells(hw_shape, window_hw, shift=0, *, multiple=None, device=None):
    """The cell keywords of :class:`AttentionWeights` for attention inside the windows of
    :func:`~.shape.map_windows` (queries and keys: the window's cells)."""
    cells = window_cells(hw_shape, window_hw, shift, multiple=multiple, device=device)
    return dict(queries=cells, keys=cells, hw_shape=tuple(hw_shape))


class recording_attention:
    """``with recording_attention(model):`` every :class:`AttentionWeights` below ``model``
    receives its attention's explicit weights."""

    def __init__(self, model: nn.Module):
        self.probes = [m for m in model.modules() if isinstance(m, AttentionWeights)]

    def __enter__(self):
        for probe in self.probes:
            probe.recording = True
        return self.probes

    def __exit__(self, *exc):
        for probe in self.probes:
            probe.recording = False


def softmax_attention(q, k, v, *, mask=None, dropout_p: float = 0., record=None):
    """Softmax attention of q, k, v shaped (..., heads, tokens, channels).

    Leading axes (batch, windows) are folded into one batch axis, because PyTorch's fused kernels
    (flash, memory-efficient) take (batch, heads, tokens, channels) only; an additive ``mask``
    broadcastable to (..., heads, queries, keys) is expanded to match. ``record`` (a callable,
    given while recording weights) receives the explicit weights, which then compute the output.
    """
    if record is not None:
        logits = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
        weights = (logits if mask is None else logits + mask.to(q.dtype)).softmax(dim=-1)
        record(weights)
        return (F.dropout(weights, dropout_p) if dropout_p else weights) @ v
    *lead, heads, num_q, _ = q.shape
    num_k = k.shape[-2]
    q, k, v = (t.reshape(-1, heads, t.shape[-2], t.shape[-1]) for t in (q, k, v))
    if mask is not None:
        mask = mask.to(q.dtype).expand(*lead, heads, num_q, num_k).reshape(-1, heads, num_q, num_k)
    if exporting_only() and not dropout_p:  # written out: the exporter gives SDPA's fused output
        # one memory layout while tracing and another after decomposing it, and then fails on
        # reshapes of it; ONNX gets these same MatMul and Softmax nodes either way
        logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        out = (logits if mask is None else logits + mask).softmax(-1) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return out.reshape(*lead, heads, num_q, out.shape[-1])


def size_cache(fn):
    """Cache a table that depends only on sizes and the device (arguments hashable), built as an
    ordinary tensor even under ``torch.inference_mode``, so that a table first built at inference
    can later be saved for backward when training. Under ``torch.compile`` the table is traced
    into the graph instead (no graph break)."""
    cached = functools.lru_cache(maxsize=None)(fn)

    @functools.wraps(fn)
    def build(*args):
        if torch.compiler.is_compiling():
            return fn(*args)
        with torch.inference_mode(False):
            return cached(*args)
    build.cache_info, build.cache_clear = cached.cache_info, cached.cache_clear
    return build


@size_cache
def relative_position_index(window_size: int, device: torch.device) -> torch.Tensor:
    """(w*w, w*w) index of each query/key pair of a w x w window into a (2w-1)^2 bias table."""
    side = torch.arange(window_size, device=device)
    coords = torch.stack(torch.meshgrid(side, side, indexing='ij')).flatten(1)  # (2, w*w)
    rel = coords[:, :, None] - coords[:, None, :] + window_size - 1
    return rel[0] * (2 * window_size - 1) + rel[1]


@size_cache
def real_map(hw_shape, padded_hw, device) -> torch.Tensor:
    """(Hp, Wp) boolean of a map padded at the bottom and right: True on the real ``hw_shape``."""
    rows, cols = (torch.arange(size, device=device) for size in padded_hw)
    return (rows[:, None] < hw_shape[0]) & (cols[None, :] < hw_shape[1])


def key_mask(valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The additive attention mask of a boolean of visible keys: 0 where visible, MASK_VALUE
    elsewhere (every padded-key mask of the package is built through here)."""
    # (shaped by ``valid`` itself: an exported graph would fix a new tensor's symbolic shape)
    zero = torch.zeros((), device=valid.device, dtype=dtype)
    return torch.where(valid, zero, zero + MASK_VALUE)


def window_shift(hw_shape, window_size: int, shifted: bool, device):
    """Swin's shift of a block: half a window when ``shifted`` and the map is larger than a window
    on both sides, else 0. While exporting, a 0-dim tensor that the graph computes from the map
    size (a Python int would fix the choice made at the example's size)."""
    if not shifted:
        return 0
    if not exporting_only():  # compiled too: a guard on the sizes, no computed roll
        return window_size // 2 if min(hw_shape) > window_size else 0
    larger = [(torch.arange(size, device=device) >= window_size).any() for size in hw_shape]
    return (larger[0] & larger[1]).long() * (window_size // 2)


def shifted_window_mask(hw_shape, padded_hw, window_size: int, shift, device):
    """(num_windows, w*w, w*w) additive mask of Swin's shifted windows on a map padded to window
    multiples: keys of other shift regions and padded keys are masked; None when every window is
    whole and unshifted. ``shift`` is an int, or a tensor while exporting (then the mask is always
    built; with a shift of 0 its regions are whole windows)."""
    (H, W), (Hp, Wp), w = hw_shape, padded_hw, window_size
    traced = exporting()
    if not traced and not shift and (H, W) == (Hp, Wp):
        return None
    rows, cols = torch.arange(Hp, device=device), torch.arange(Wp, device=device)
    valid = real_map((H, W), (Hp, Wp), device)
    region = torch.zeros(Hp, Wp, device=device, dtype=torch.long)
    if traced or shift:  # regions of the rolled map: [0, P-w), [P-w, P-shift), [P-shift, P)
        row_id = (rows >= Hp - w).long() + (rows >= Hp - shift).long()
        col_id = (cols >= Wp - w).long() + (cols >= Wp - shift).long()
        region = row_id[:, None] * 3 + col_id[None, :]
        valid = roll_map(valid, -shift, dims=(0, 1))
    region = window_partition(region[None, :, :, None], w)[..., 0]  # (nW, w*w)
    valid = window_partition(valid[None, :, :, None], w)[..., 0]
    return key_mask((region[:, :, None] == region[:, None, :]) & valid[:, None, :])


class ShiftedWindowAttention(SavedGrids, nn.Module):
    """Swin's window softmax attention with a relative position bias, shifted by half a window when
    ``shifted`` and the map is larger than one window. Tokens (B, N, C) of a ``hw_shape`` map; the
    map is padded to window multiples, padded keys and keys of other shift regions are masked."""
    no_weight_decay_params = ('rel_pos_table', )  # as Swin trains it

    def __init__(self, dim: int, *, num_heads: int, window_size: int, shifted: bool = False,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.window_size = window_size
        self.shifted = shifted
        self.attn_drop = attn_drop
        self.rel_pos_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_weights = AttentionWeights()

    def saved_grids(self):
        side = 2 * self.window_size - 1
        yield 'rel_pos_table', self.rel_pos_table, (side, side)

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        (H, W), w = hw_shape, self.window_size
        shift = window_shift((H, W), w, self.shifted, x.device)
        windows, padded_hw = map_windows(x.reshape(B, H, W, C), w, shift)  # (B * nW, w*w, C)
        num_windows, n = padded_hw[0] // w * (padded_hw[1] // w), w * w
        q, k, v = self.qkv(windows).reshape(B, num_windows, n, 3, self.num_heads, -1).permute(
            3, 0, 1, 4, 2, 5)  # each (B, nW, heads, n, d)
        index = relative_position_index(w, x.device).reshape(-1)
        bias = self.rel_pos_table[index].reshape(n, n, -1).permute(2, 0, 1)  # (heads, n, n)
        mask = shifted_window_mask((H, W), padded_hw, w, shift, x.device)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, heads, n, n)
        record = self.attn_weights.recorder(lambda: window_probe_cells(
            hw_shape, w, shift, device=x.device))
        out = softmax_attention(q, k, v, mask=bias, record=record,
                                dropout_p=self.attn_drop if self.training else 0.)
        out = window_reverse(out.transpose(2, 3).reshape(B * num_windows, n, C), w, padded_hw)
        out = roll_map(out, shift, dims=(1, 2))
        return self.proj_drop(self.proj(out[:, :H, :W].reshape(B, N, C)))


class SpatialReductionAttention(nn.Module):
    """PVT's spatial-reduction softmax attention: keys and values from the map shrunk ``sr_ratio``
    times by a strided conv and a norm (the map padded to a multiple of the ratio)."""

    def __init__(self, dim: int, *, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0., norm_cfg=dict(type='LN')):
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.attn_drop = attn_drop
        self.q = Linear(dim, dim, bias=qkv_bias)
        self.kv = Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = build_norm(norm_cfg, dim)
        self.attn_weights = AttentionWeights()

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(image_to_tokens(self.sr(pad_to_multiple(
                tokens_to_image(x, hw_shape), self.sr_ratio))))
        k, v = self.kv(x).reshape(B, -1, 2, self.num_heads, C // self.num_heads).permute(
            2, 0, 3, 1, 4)
        record = self.attn_weights.recorder(lambda: map_probe_cells(
            hw_shape, k.shape[-2], key_stride=self.sr_ratio, device=x.device))
        out = softmax_attention(q, k, v, record=record,
                                dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))
