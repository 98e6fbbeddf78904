"""SG-Former: Self-guided Transformer with Evolving Token Reallocation (Ren et al., ICCV 2023) as a
hierarchical backbone for classification, detection and segmentation (released settings as in
OliverRensu/SG-Former).

Stages 1-3 alternate two attentions. A *hybrid-scale* block attends with half of its heads
globally to a map shrunk ``sr_ratio`` times and with the other half inside 7x7 windows; the
attention each key receives, averaged over heads and queries, is its *significance* (the global
part spread over the ``sr x sr`` cells of its reduced token). The next, *significance-guided*
block sorts the tokens by that map and merges them into few keys and values: the least
significant quarter in large groups, the middle half in middle-sized groups, the most significant
quarter in small groups (stage 3: two halves, groups of 2 and 1), each group by a learned weighting
of its ranks (a ``Linear(group, 1)``). Stage 4 is global attention. Every attention adds a
convolutional positional term (LePE) before its projection.

Any input size:

* the windows and the shrinking conv pad the map (bottom/right, zeros); padded keys are masked
  out of the windows, and the significance is that of the real map: padded queries give nothing,
  each window's sum is divided by a whole window's number of queries (a window cut short by the
  padding gives its keys no larger share) and the map is cropped to the real tokens;
* token groups keep their learned size (each weight of a ``Linear(group, 1)`` belongs to one rank
  inside a group, so the size is tied to the weights), and their *number* follows the map: a part
  of ``n`` sorted tokens gives ``ceil(n / group)`` groups, the last one completed with zero tokens.
  The official code does the same at sizes where the parts divide (the number of groups is
  computed from the number of tokens), so this is its rule extended to any size rather than
  padding the map to multiples of the 224 grid (which would sort padding among the real tokens).
  At 224 every part divides exactly and nothing is padded;
* the position embedding of the 224 grid (sine-cosine initialised, learned) is resized bicubically
  to the stage-1 map, and checkpoints of another grid load resized.
"""
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_backbone
from .base import DenseBackbone, TokenStage
from .layers import (AttentionWeights, GridPositionEmbedding, Linear, Mlp, build_norm, check_heads,
                     drop_path, exporting_only, fan_out_normal_, image_to_tokens, map_probe_cells,
                     pad_to_multiple, real_map, shifted_window_mask, softmax_attention,
                     tokens_to_image, window_partition, window_probe_cells, window_reverse)

WINDOW_SIZE = 7  # the local windows of the hybrid-scale attention
# per shrink ratio: the fractions of the sorted tokens (least significant first) and the size of
# the groups each is merged in (the official f1, f2, f3)
TOKEN_GROUPS = {8: ((1 / 4, 1 / 2, 1 / 4), (196, 56, 28)),
                4: ((1 / 4, 1 / 2, 1 / 4), (49, 14, 7)),
                2: ((1 / 2, 1 / 2), (2, 1))}


def sincos_pos_embed(dim: int, hw_shape) -> torch.Tensor:
    """(1, H*W, dim) 2-D sine-cosine embedding (MAE's): the first half encodes the column, the
    second the row, each as [sin, cos] of ``dim / 4`` frequencies."""
    if dim % 4:
        raise ValueError(f'A 2-D sine-cosine position embedding needs dim divisible by 4, got '
                         f'{dim}.')
    omega = 1. / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    rows, cols = torch.meshgrid(torch.arange(hw_shape[0], dtype=torch.float64),
                                torch.arange(hw_shape[1], dtype=torch.float64), indexing='ij')
    parts = [torch.cat([(pos.reshape(-1, 1) * omega).sin(), (pos.reshape(-1, 1) * omega).cos()], 1)
             for pos in (cols, rows)]
    return torch.cat(parts, dim=1).float()[None]


class ConvGN(nn.Sequential):
    """Convolution without bias and a one-group GroupNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1):
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                           groups=groups, bias=False),
            norm=nn.GroupNorm(1, out_channels)))


class SGFormerStem(nn.Module):
    """Three 3x3 ConvGN (strides 2, 1, 2) with GELUs, LayerNorm, and the position embedding of
    the ``pos_hw`` grid (resized bicubically to other maps). Image -> tokens, map shape."""

    def __init__(self, in_channels: int, dim: int, *, pos_hw):
        super().__init__()
        self.convs = nn.Sequential(ConvGN(in_channels, dim, 3, 2), nn.GELU(), ConvGN(dim, dim, 3),
                                   nn.GELU(), ConvGN(dim, dim, 3, 2))
        self.norm = nn.LayerNorm(dim)
        self.pos_embed = GridPositionEmbedding(dim, grid=pos_hw, mode='bicubic',
                                               align_corners=False)

    def forward(self, x):
        x = self.convs(x)
        H, W = x.shape[2:]  # (unpacked: an FX proxy's shape unpacks, never iterates)
        hw_shape = (H, W)
        return self.pos_embed(self.norm(image_to_tokens(x)), hw_shape), hw_shape


class ConvDownsample(nn.Module):
    """1x1 ConvGN, GELU, depthwise 3x3 stride-2 ConvGN, GELU, 1x1 ConvGN (``ceil`` halving)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvGN(in_channels, out_channels)
        self.conv2 = ConvGN(out_channels, out_channels, 3, 2, groups=out_channels)
        self.conv3 = ConvGN(out_channels, out_channels)
        self.act = nn.GELU()

    def forward(self, x, hw_shape):
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(tokens_to_image(x, hw_shape))))))
        return image_to_tokens(x), tuple(x.shape[2:])


class ConvResidualMlp(Mlp):
    """fc1, ``act(x + dwconv(x))``, fc2: SG-Former's MLP (a residual depthwise conv)."""

    def __init__(self, dim: int, hidden_dim: int, *, drop: float = 0.):
        super().__init__(dim, hidden_dim, drop=drop, dwconv=True)

    def mix(self, x):
        return x + self.dwconv(x)


class LePEAttention(nn.Module):
    """What the three attentions share: heads, ``lepe_conv(lepe_linear(x))`` added to the
    attention output before the projection, dropouts. ``forward(x, hw_shape, significance)``
    returns ``(out, significance for the next block or None)``."""

    def __init__(self, dim: int, *, num_heads: int, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.lepe_linear = Linear(dim, dim)
        self.lepe_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    @property
    def dropout_p(self):
        return self.attn_drop if self.training else 0.

    def finish(self, out, x, hw_shape):
        lepe = image_to_tokens(self.lepe_conv(tokens_to_image(self.lepe_linear(x), hw_shape)))
        return self.proj_drop(self.proj(out + lepe))


class GlobalAttention(LePEAttention):
    """Stage 4: softmax attention of every token to every token."""

    def __init__(self, dim, *, qkv_bias=True, **kwargs):
        super().__init__(dim, **kwargs)
        self.q = Linear(dim, dim, bias=qkv_bias)
        self.kv = Linear(dim, 2 * dim, bias=qkv_bias)
        self.attn_weights = AttentionWeights()

    def forward(self, x, hw_shape, significance=None):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
        k, v = self.kv(x).reshape(B, N, 2, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        record = self.attn_weights.recorder(lambda: map_probe_cells(hw_shape, N, device=x.device))
        out = softmax_attention(q, k, v, dropout_p=self.dropout_p, record=record)
        return self.finish(out.transpose(1, 2).reshape(B, N, C), x, hw_shape), None


class SignificanceMap(nn.Module):
    """The significance (B, H, W) of the real map's tokens from the attention probabilities of a
    hybrid-scale block (before dropout, detached: no gradient flows through it, as the
    official): the attention each token receives, averaged over heads and queries, in the global
    branch (spread over its ``sr x sr`` cells) plus in its window. Its output is what a forward
    hook on ``attn.significance`` of a hybrid-scale block reads."""

    def __init__(self, sr_ratio: int, window_size: int):
        super().__init__()
        self.sr_ratio = sr_ratio
        self.window_size = window_size

    @torch.no_grad()
    def forward(self, global_probs, local_probs, *, reduced_hw, hw_shape, padded_hw):
        """``global_probs`` (B, heads, N, n) of the queries to the ``reduced_hw`` map;
        ``local_probs`` (B, windows, heads, w*w, w*w) in the windows of the map padded to
        ``padded_hw`` (window multiples; padded keys masked)."""
        (H, W), r, w = hw_shape, self.sr_ratio, self.window_size
        real = window_partition(real_map((H, W), padded_hw, local_probs.device)[None, :, :, None],
                                w).to(local_probs.dtype)  # (windows, w*w queries, 1)
        # padded queries give nothing; per window, over the w*w queries of a whole one: a window
        # that padding cuts short then gives its keys no larger share (uniform attention: a
        # uniform map at any size)
        if exporting_only():
            received, in_window = self.products(global_probs, local_probs, real)
        else:
            received = global_probs.mean(dim=(1, 2))
            in_window = (local_probs.mean(2) * real[None]).sum(2) / (w * w)
        received = received.reshape(-1, *reduced_hw)
        received = received.repeat_interleave(r, 1).repeat_interleave(r, 2)[:, :H, :W]
        in_window = window_reverse(in_window.reshape(-1, w * w, 1), w, padded_hw)
        return received + in_window[:, :H, :W, 0]

    def products(self, global_probs, local_probs, real):
        """The two means of :meth:`forward` as matrix-vector products, for the export: ONNX
        Runtime's ReduceMean over middle axes is slow (a 3x22267x1050 mean over its first two
        axes: 257 ms against 17 ms as a MatMul, 2 threads)."""
        B, heads, N, n = global_probs.shape
        rows = global_probs.reshape(B, heads * N, n)
        ones = torch.ones_like(rows[:, :, :1]).transpose(1, 2)  # (B, 1, heads*N), shaped by N
        received = (ones @ rows)[:, 0] / (heads * N)
        _, windows, heads, queries, keys = local_probs.shape
        weights = real.transpose(1, 2).repeat(1, 1, heads)  # (windows, 1, heads * queries)
        in_window = weights @ local_probs.reshape(B, windows, heads * queries, keys)
        return received, in_window[:, :, 0] / (heads * queries)


class HybridScaleAttention(LePEAttention):
    """Half of the heads attend to the map shrunk ``sr_ratio`` times (strided conv, LayerNorm,
    GELU), the other half inside 7x7 windows of the full map; returns the output and the
    significance map (:class:`SignificanceMap`, submodule ``significance``). Each half computes
    its probabilities once, explicitly, for its output and the map, as the official. Probes:
    ``global_weights`` (keys on the shrunk map), ``local_weights`` (the windows)."""

    def __init__(self, dim, *, sr_ratio: int, qkv_bias=True, **kwargs):
        super().__init__(dim, **kwargs)
        if self.num_heads % 2:
            raise ValueError(f'Hybrid-scale attention splits the heads in two halves: num_heads '
                             f'must be even in stages with sr_ratio > 1, got {self.num_heads}.')
        self.sr_ratio = sr_ratio
        self.global_q = Linear(dim, dim // 2, bias=qkv_bias)
        self.reduce = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
        self.reduce_norm = nn.LayerNorm(dim)
        self.reduce_act = nn.GELU()
        self.global_kv = Linear(dim, dim, bias=qkv_bias)
        self.local_q = Linear(dim, dim // 2, bias=qkv_bias)
        self.local_kv = Linear(dim, dim, bias=qkv_bias)
        self.significance = SignificanceMap(sr_ratio, WINDOW_SIZE)
        self.global_weights = AttentionWeights()
        self.local_weights = AttentionWeights()

    def forward(self, x, hw_shape, significance=None):
        B, N, C = x.shape
        (H, W), heads, w = hw_shape, self.num_heads // 2, WINDOW_SIZE
        probs = []  # global, then local
        # global half: keys and values of the shrunk map
        global_q = self.global_q(x).reshape(B, N, heads, -1).transpose(1, 2)
        reduced = self.reduce(pad_to_multiple(tokens_to_image(x, hw_shape), self.sr_ratio))
        reduced_hw = tuple(reduced.shape[2:])
        reduced = self.reduce_act(self.reduce_norm(image_to_tokens(reduced)))
        global_k, global_v = self.global_kv(reduced).reshape(B, -1, 2, heads, C // 2 // heads) \
            .permute(2, 0, 3, 1, 4)
        record = self.global_weights.recorder(lambda: map_probe_cells(
            hw_shape, global_k.shape[-2], key_stride=self.sr_ratio, device=x.device), keep=probs)
        global_out = softmax_attention(global_q, global_k, global_v, dropout_p=self.dropout_p,
                                       record=record)
        # local half: windows of the map padded to window multiples, padded keys masked
        qkv = torch.cat([self.local_q(x), self.local_kv(x)], dim=-1).reshape(B, H, W, -1)
        qkv = pad_to_multiple(qkv, w, channels_last=True)
        padded_hw = tuple(qkv.shape[1:3])
        num_windows = padded_hw[0] * padded_hw[1] // (w * w)
        local_q, local_k, local_v = window_partition(qkv, w).reshape(
            B, num_windows, w * w, 3, heads, -1).permute(3, 0, 1, 4, 2, 5)  # (B, nW, heads, n, d)
        mask = shifted_window_mask(hw_shape, padded_hw, w, 0, x.device)
        record = self.local_weights.recorder(
            lambda: window_probe_cells(hw_shape, w, device=x.device), keep=probs)
        local_out = softmax_attention(local_q, local_k, local_v, dropout_p=self.dropout_p,
                                      mask=None if mask is None else mask[:, None], record=record)
        local_out = window_reverse(local_out.transpose(2, 3).reshape(B * num_windows, w * w, -1),
                                   w, padded_hw)[:, :H, :W].reshape(B, N, -1)
        out = self.finish(torch.cat([global_out.transpose(1, 2).reshape(B, N, -1), local_out],
                                    dim=-1), x, hw_shape)
        return out, self.significance(*probs, reduced_hw=reduced_hw, hw_shape=hw_shape,
                                      padded_hw=padded_hw)


class SignificanceGuidedAttention(LePEAttention):
    """All heads attend to few keys and values merged from the tokens sorted by the previous
    block's significance (see the module docstring). The first half of the heads gets its keys
    and values from ``kv1`` on the tokens sorted in row-major scan order, the second half from
    ``kv2`` on the column-major scan sorted: the same sequence up to the order of tokens of equal
    significance (near-uniform attention gives some), which is kept as the official's.

    Its probe ``attn_weights`` records keys as -1: each key merges a group of tokens that depends
    on the image and on the half of the heads, so no key has a map cell."""

    def __init__(self, dim, *, sr_ratio: int, qkv_bias=True, **kwargs):
        super().__init__(dim, **kwargs)
        if self.num_heads % 2:
            raise ValueError(f'Significance-guided attention splits the heads in two halves: '
                             f'num_heads must be even in stages with sr_ratio > 1, got '
                             f'{self.num_heads}.')
        self.fractions, self.group_sizes = TOKEN_GROUPS[sr_ratio]
        self.q = Linear(dim, dim, bias=qkv_bias)
        self.kv1 = Linear(dim, dim, bias=qkv_bias)
        self.kv2 = Linear(dim, dim, bias=qkv_bias)
        self.aggregators = nn.ModuleList(nn.Linear(size, 1) for size in self.group_sizes)
        self.attn_weights = AttentionWeights()

    def parts(self, num_tokens):
        """The parts of ``num_tokens`` sorted tokens (official bounds ``N // 4`` and
        ``N // 4 * 3``, or ``N // 2``): (start, end, group size, number of groups) of each."""
        N = num_tokens
        bounds = [0, N // 4, N // 4 * 3, N] if len(self.fractions) == 3 else [0, N // 2, N]
        # ceil (written so: ONNX truncates negative divisions)
        return [(start, end, size, (end - start + size - 1) // size)
                for start, end, size in zip(bounds, bounds[1:], self.group_sizes)]

    def merge(self, tokens):
        """Sorted tokens (B, N, C) -> merged tokens (B, M, C): each part of the sorted sequence
        in groups of its size (the last one completed with zero tokens)."""
        B, N, C = tokens.shape
        merged = []
        for (start, end, size, groups), aggregator in zip(self.parts(N), self.aggregators):
            part = F.pad(tokens[:, start:end], (0, 0, 0, groups * size - (end - start)))
            merged.append(aggregator(part.reshape(B, groups, size, C).transpose(2, 3))[..., 0])
        return torch.cat(merged, dim=1)

    def group_of_rank(self, num_tokens: int) -> torch.Tensor:
        """The merged key (group) that each rank of ``num_tokens`` sorted tokens goes into."""
        groups, first = [], 0
        for start, end, size, count in self.parts(num_tokens):
            groups.append(first + torch.arange(end - start) // size)
            first += count
        return torch.cat(groups)

    @staticmethod
    def scan_orders(significance):
        """The tokens by ascending significance (B, H, W) in the row-major and in the
        column-major scan: two (B, N) of scan indices. Equal values keep their scan order (a
        stable sort, as ONNX's TopK orders ties), so PyTorch and ONNX Runtime order exact ties
        alike."""
        B, H, W = significance.shape
        # exported: aten.sort (its stable overload has no ONNX function) -> ONNX's TopK, which
        # orders ties by index, as the stable sort
        stable = {} if exporting_only() else dict(stable=True)
        return [scan.reshape(B, H * W).sort(dim=1, **stable)[1]
                for scan in (significance, significance.transpose(1, 2))]

    def forward(self, x, hw_shape, significance):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
        H, W = hw_shape
        by_rows, by_cols = self.scan_orders(significance)
        # column-major scan index -> token index (a table, not ``% H * W + // H``: ONNX export
        # takes no remainder by a symbolic size)
        by_cols = torch.arange(N, device=x.device).reshape(H, W).t().flatten()[by_cols]
        order = torch.cat([by_rows, by_cols], dim=1)[..., None].expand(-1, -1, C)
        merged = self.merge(x.gather(1, order).reshape(2 * B, N, C)).reshape(B, 2, -1, C)
        kv = torch.cat([kv(merged[:, i]).reshape(B, -1, 2, self.num_heads // 2,
                                                 C // self.num_heads)
                        for i, kv in enumerate((self.kv1, self.kv2))], dim=3)
        k, v = kv.permute(2, 0, 3, 1, 4)
        record = self.attn_weights.recorder(lambda: map_probe_cells(
            hw_shape, k.shape[-2], keys=torch.full((k.shape[-2], ), -1, device=x.device)))
        out = softmax_attention(q, k, v, dropout_p=self.dropout_p, record=record)
        return self.finish(out.transpose(1, 2).reshape(B, N, C), x, hw_shape), None


class SGFormerBlock(nn.Module):
    """Pre-norm attention and MLP residuals; ``forward(x, hw_shape, significance)`` returns the
    tokens and the significance map for the next block (hybrid-scale blocks) or None."""

    def __init__(self, dim: int, *, attn: LePEAttention, mlp_ratio: float, drop_rate: float,
                 drop_path_rate: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvResidualMlp(dim, int(dim * mlp_ratio), drop=drop_rate)

    def forward(self, x, hw_shape, significance=None):
        out, significance = self.attn(self.norm1(x), hw_shape, significance)
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x), hw_shape)), significance


class SGFormerStage(TokenStage):
    """A :class:`TokenStage` whose blocks pass the significance map on: each block sorts its
    tokens by the map of the block before (None for the first) and returns its own."""

    def forward_blocks(self, x, hw_shape):
        significance = None
        for block in self.blocks:
            x, significance = self.run_block(block, x, hw_shape, significance)
        return x


@register_backbone
class SGFormer(DenseBackbone):
    """SG-Former backbone returning maps at strides 4, 8, 16 and 32 for any input size.

    In the stages with ``sr_ratio > 1`` blocks alternate: even blocks (0, 2, ...) hybrid-scale
    attention, odd blocks significance-guided attention on the map of the block before; an odd
    depth ends with a hybrid-scale block whose map no block uses (computed all the same, from the
    explicit softmax weights that every hybrid-scale block keeps). Stages with ``sr_ratio`` 1:
    global attention. Every stage ends with a LayerNorm, so its output is normed (the classifier
    averages the last one).

    The significance map of a hybrid-scale block is the output of its submodule
    ``stages[i].blocks[j].attn.significance`` (a :class:`SignificanceMap`, no parameters), a
    (B, H, W) tensor on stage ``i``'s real map: a forward hook on it reads the map that block
    ``j + 1`` sorts its tokens by.

    Args:
        arch (str | dict): ``s``, ``m``, ``b`` (the official SG-Former-S/M/B), or a dict with
            ``embed_dims``, ``depths``, ``num_heads``, ``mlp_ratios`` and optionally ``sr_ratios``
            (``[8, 4, 2, 1]``; each of 8, 4, 2, 1).
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int): The size the position embedding's grid is laid out for (224,
            a 56x56 grid); other inputs resize it, checkpoints of another grid load resized.
        qkv_bias (bool): Bias of the q, k, v projections. Defaults to True.
        drop_rate / attn_drop_rate (float): Dropout after attention and in the MLP, and of the
            attention weights. Default to 0.
        out_indices, frozen_stages, norm_eval, with_cp, drop_path_rate, init_cfg: see
            :class:`DenseBackbone`.
    """

    arch_zoo = {
        's': dict(embed_dims=[64, 128, 256, 512], depths=[2, 4, 16, 1], num_heads=[2, 4, 8, 16],
                  mlp_ratios=[4, 4, 4, 4], sr_ratios=[8, 4, 2, 1]),
        'm': dict(embed_dims=[64, 128, 256, 512], depths=[2, 6, 28, 2], num_heads=[2, 4, 8, 16],
                  mlp_ratios=[4, 4, 4, 4], sr_ratios=[8, 4, 2, 1]),
        'b': dict(embed_dims=[96, 192, 384, 768], depths=[4, 6, 24, 2], num_heads=[4, 6, 12, 24],
                  mlp_ratios=[4, 4, 4, 4], sr_ratios=[8, 4, 2, 1]),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios')
    optional_arch_keys = ('sr_ratios', )
    norm_places = {'stages': None}

    def __init__(self, arch='s', in_channels=3, pretrain_img_size=224, qkv_bias=True, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 norm_eval=False, with_cp=False, init_cfg=None):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices,
                         frozen_stages=frozen_stages, norm_eval=norm_eval, with_cp=with_cp,
                         drop_path_rate=drop_path_rate, init_cfg=init_cfg)
        settings, n = self.arch_settings, self.num_stages
        sr_ratios = settings.get('sr_ratios', [8, 4, 2, 1][-n:])
        if len(sr_ratios) != n or any(r not in (*TOKEN_GROUPS, 1) for r in sr_ratios):
            raise ValueError(f'SGFormer sr_ratios must give one of 8, 4, 2, 1 for each of the {n} '
                             f'stages (the ratios with released token groups), got {sr_ratios!r}.')
        if not isinstance(pretrain_img_size, int) or pretrain_img_size < 4:
            raise ValueError(f'SGFormer pretrain_img_size must be an int of at least 4, got '
                             f'{pretrain_img_size!r}.')
        dims = self.embed_dims = list(settings['embed_dims'])
        self.patch_embed = SGFormerStem(in_channels, dims[0], pos_hw=(pretrain_img_size // 4, ) * 2)

        def attention(i, j):
            kwargs = dict(num_heads=settings['num_heads'][i], qkv_bias=qkv_bias,
                          attn_drop=attn_drop_rate, proj_drop=drop_rate)
            if sr_ratios[i] == 1:
                return GlobalAttention(dims[i], **kwargs)
            if j % 2:
                return SignificanceGuidedAttention(dims[i], sr_ratio=sr_ratios[i], **kwargs)
            return HybridScaleAttention(dims[i], sr_ratio=sr_ratios[i], **kwargs)

        self.stages = nn.ModuleList(
            SGFormerStage([SGFormerBlock(dims[i], attn=attention(i, j),
                                         mlp_ratio=settings['mlp_ratios'][i], drop_rate=drop_rate,
                                         drop_path_rate=rate)
                           for j, rate in enumerate(rates)],
                          downsample=ConvDownsample(dims[i - 1], dims[i]) if i else None)
            for i, rates in enumerate(self.drop_path_rates))
        self.build_output_norms(partial(build_norm, dict(type='LN'), eps=1e-6))
        self.finish_build()

    def init_module(self, module):
        """The official initialisation: truncated normal linear layers, fan-out normal convs,
        unit norms, and the sine-cosine position embedding."""
        super().init_module(module)
        if isinstance(module, nn.Conv2d):
            fan_out_normal_(module)
        elif isinstance(module, nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, SGFormerStem):
            with torch.no_grad():
                embed = module.pos_embed
                embed.weight.copy_(sincos_pos_embed(embed.weight.shape[-1], embed.grid))
