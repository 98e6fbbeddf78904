"""GroupMixFormer's Group-Mix Attention (Ge et al., 2023) on tokens of a map: q, k and v in five
channel groups, one passed unchanged, three aggregated by separable 3x3, 5x5 and 7x7 convs, the
fifth bypassing attention through a local aggregator; attention in the official efficient form
``q (softmax_N(k)^T v)``, linear in the number of tokens, plus a convolutional relative position
term. GroupMixFormer's blocks and the unified family's U-GroupMix share it."""
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .attention import AttentionWeights, map_probe_cells
from .fuse import Fusable, fold_bn
from .linear import Linear
from .norm import build_norm
from .shape import exporting_only, image_to_tokens


class SepConv2d(nn.Sequential):
    """Depthwise k x k convolution followed by a pointwise one, both without bias."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, stride: int = 1):
        super().__init__(OrderedDict(
            depthwise=nn.Conv2d(in_channels, in_channels, kernel_size, stride, kernel_size // 2,
                                groups=in_channels, bias=False),
            pointwise=nn.Conv2d(in_channels, out_channels, 1, bias=False)))

    def fold(self, norm: nn.Module) -> nn.Module:
        """Fold a BatchNorm ``norm`` that follows into the pointwise conv; what replaces it."""
        if not isinstance(norm, _BatchNorm):
            return norm
        self.pointwise = fold_bn(self.pointwise, norm)
        return nn.Identity()


class GroupAggregator(Fusable, nn.Module):
    """Pre-attention aggregator of one channel group: separable k x k conv (identity for k=1),
    norm and Hardswish."""

    def __init__(self, channels: int, *, kernel_size: int, norm_cfg: dict):
        super().__init__()
        self.conv = SepConv2d(channels, channels,
                              kernel_size=kernel_size) if kernel_size > 1 else nn.Identity()
        self.norm = build_norm(norm_cfg, channels)
        self.act = nn.Hardswish()

    def fuse_own(self):
        if isinstance(self.conv, SepConv2d):
            self.norm = self.conv.fold(self.norm)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class LocalAggregator(nn.Module):
    """The branch that bypasses attention: mixes the last group of q, k and v with a separable 3x3
    conv, LayerNorm and Hardswish. (B, 3C, H, W) -> tokens (B, HW, C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = SepConv2d(3 * channels, channels, kernel_size=3)
        self.norm = nn.LayerNorm(channels)
        self.act = nn.Hardswish()

    def forward(self, x):
        return self.act(self.norm(image_to_tokens(self.conv(x))))


def crpe_head_splits(num_heads: int) -> dict:
    """Heads per kernel size of the convolutional relative position encoding: a third each, the
    remainder to the larger kernels; ``{3: 2, 5: 3, 7: 3}`` for the official 8 heads."""
    splits = {k: num_heads // 3 + (i >= 3 - num_heads % 3) for i, k in enumerate((3, 5, 7))}
    return {k: heads for k, heads in splits.items() if heads}


class ConvRelPosEnc(nn.Module):
    """Convolutional relative position encoding ``q * dwconv(v)``; ``head_splits`` maps a kernel
    size to the number of heads that use it."""

    def __init__(self, head_channels: int, *, head_splits: dict):
        super().__init__()
        self.splits = [heads * head_channels for heads in head_splits.values()]
        self.convs = nn.ModuleList(
            nn.Conv2d(c, c, k, padding=k // 2, groups=c) for k, c in zip(head_splits, self.splits))

    def forward(self, q, v, hw_shape):
        """q, v: (B, heads, head_channels, N), channels first."""
        B, heads, head_channels, N = v.shape
        v = v.reshape(B, heads * head_channels, *hw_shape).split(self.splits, dim=1)
        conv_v = torch.cat([conv(part) for conv, part in zip(self.convs, v)], dim=1)
        return q * conv_v.reshape(B, heads, head_channels, N)


class GroupMixAttention(nn.Module):
    """Group-Mix Attention on tokens (B, N, C) of a map of ``hw_shape``. Probe ``attn_weights``:
    while recording, the N x N weights of the efficient attention (see :meth:`attend`)."""

    def __init__(self, dim: int, *, num_heads: int = 8, qkv_bias: bool = True,
                 proj_drop: float = 0., norm_cfg: dict = dict(type='BN')):
        super().__init__()
        if dim % 5 or (dim // 5 * 4) % num_heads:
            raise ValueError(f'GroupMixAttention needs dim divisible by 5 with 4/5 of it divisible by '
                             f'num_heads; got dim={dim}, num_heads={num_heads}.')
        self.num_heads = num_heads
        self.group_channels = dim // 5
        self.scale = (dim // num_heads) ** -0.5  # as in the official implementation
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        self.group_aggs = nn.ModuleList(
            GroupAggregator(self.group_channels, kernel_size=k, norm_cfg=norm_cfg)
            for k in (1, 3, 5, 7))
        self.local_agg = LocalAggregator(self.group_channels)
        self.crpe = ConvRelPosEnc(4 * self.group_channels // num_heads,
                                  head_splits=crpe_head_splits(num_heads))
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_weights = AttentionWeights()

    def attend(self, q, k, v, hw_shape):
        """Efficient attention of q, k, v (B, heads, Ch, N) plus the relative position term:
        (B, heads, Ch, N). Its attention part is ``v`` weighted by the N x N weights
        ``scale * q^T softmax_N(k)`` (rows need not sum to 1), which the probe receives, only
        while recording; the output keeps the product linear in N."""
        k = k.softmax(dim=-1)
        if self.attn_weights.recording:
            self.attn_weights(self.scale * q.transpose(-2, -1) @ k,
                              **map_probe_cells(hw_shape, q.shape[-1], device=q.device))
        context = k @ v.transpose(-2, -1)  # (B, heads, Ch, Ch)
        return self.scale * (context.transpose(-2, -1) @ q) + self.crpe(q, v, hw_shape)

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        G = self.group_channels
        # q, k and v stacked on the batch axis as images, (3B, C, H, W), split into 5 groups
        qkv = self.qkv(x)
        if exporting_only():  # the same permutation as two that ONNX Runtime copies 4x faster
            qkv = qkv.transpose(1, 2).reshape(B, 3, C, N).transpose(0, 1)
        else:
            qkv = qkv.reshape(B, N, 3, C).permute(2, 0, 3, 1)
        groups = qkv.reshape(3 * B, C, *hw_shape).split(G, dim=1)
        mixed = torch.cat([agg(g) for agg, g in zip(self.group_aggs, groups)], dim=1)
        local = self.local_agg(groups[4].reshape(3, B, G, *hw_shape).transpose(0, 1).reshape(
            B, 3 * G, *hw_shape))
        q, k, v = mixed.reshape(3, B, self.num_heads, -1, N).unbind(0)  # (B, heads, Ch, N)
        out = self.attend(q, k, v, hw_shape)
        out = torch.cat([out.reshape(B, 4 * G, N).transpose(1, 2), local], dim=-1)
        return self.proj_drop(self.proj(out))
