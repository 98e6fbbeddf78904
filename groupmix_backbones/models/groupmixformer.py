"""GroupMixFormer: Group-Mix Attention (Ge et al., "Advancing Vision Transformers with Group-Mix
Attention", 2023) as a hierarchical backbone for classification, detection and segmentation.

Group-Mix Attention splits q, k and v into five channel groups: one passes unchanged, three are
aggregated by separable convolutions (3x3, 5x5, 7x7) so that attention also relates token *groups*,
and the fifth bypasses attention through a local aggregator. Attention is the official efficient
form, ``q (softmax_N(k)^T v)``, linear in the number of tokens, plus a convolutional relative
position term.
"""
import warnings
from collections import OrderedDict
from functools import partial

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import register_backbone
from .base import DenseBackbone, TokenStage
from .layers import (AttentionWeights, Fusable, Linear, Mlp, build_norm, drop_path, fold_bn,
                     image_to_tokens, map_probe_cells, tokens_to_image)


class ConvStem(Fusable, nn.Sequential):
    """Two 3x3 stride-2 convs (with bias, as the official), each with a norm and Hardswish (mmcv
    ConvModules): image -> tokens of the map at stride 4 and its shape."""

    def __init__(self, in_channels: int, dim: int, *, norm_cfg: dict):
        conv_kwargs = dict(kernel_size=3, stride=2, padding=1, bias=True, norm_cfg=norm_cfg,
                           act_cfg=dict(type='HSwish'))
        with warnings.catch_warnings():  # the conv biases before the norms
            warnings.filterwarnings('ignore', 'Unnecessary conv bias')
            super().__init__(ConvModule(in_channels, dim // 2, **conv_kwargs),
                             ConvModule(dim // 2, dim, **conv_kwargs))

    def fuse_own(self):
        for layer in self:
            if isinstance(layer.norm, _BatchNorm):
                layer.conv = fold_bn(layer.conv, layer.norm)
                setattr(layer, layer.norm_name, nn.Identity())

    def forward(self, x):
        x = super().forward(x)
        H, W = x.shape[2:]  # (unpacked: an FX proxy's shape unpacks, never iterates)
        return image_to_tokens(x), (H, W)


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


class PatchEmbed(Fusable, nn.Module):
    """Separable 3x3 convolution (stride 1 or 2), norm and Hardswish; any input size (ceil).
    Tokens (B, N, C) of a ``hw_shape`` map -> tokens and their map's shape."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int, norm_cfg: dict):
        super().__init__()
        self.proj = SepConv2d(in_channels, out_channels, kernel_size=3, stride=stride)
        self.norm = build_norm(norm_cfg, out_channels)
        self.act = nn.Hardswish()

    def fuse_own(self):
        self.norm = self.proj.fold(self.norm)

    def forward(self, x, hw_shape):
        x = self.act(self.norm(self.proj(tokens_to_image(x, hw_shape))))
        H, W = x.shape[2:]
        return image_to_tokens(x), (H, W)


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
        groups = self.qkv(x).reshape(B, N, 3, C).permute(2, 0, 3, 1).reshape(
            3 * B, C, *hw_shape).split(G, dim=1)
        mixed = torch.cat([agg(g) for agg, g in zip(self.group_aggs, groups)], dim=1)
        local = self.local_agg(groups[4].reshape(3, B, G, *hw_shape).transpose(0, 1).reshape(
            B, 3 * G, *hw_shape))
        q, k, v = mixed.reshape(3, B, self.num_heads, -1, N).unbind(0)  # (B, heads, Ch, N)
        out = self.attend(q, k, v, hw_shape)
        out = torch.cat([out.reshape(B, 4 * G, N).transpose(1, 2), local], dim=-1)
        return self.proj_drop(self.proj(out))


class GroupMixBlock(nn.Module):
    """Convolutional position encoding, then pre-norm Group-Mix Attention and MLP residuals."""

    def __init__(self, dim: int, *, num_heads: int, mlp_ratio: float, qkv_bias: bool,
                 drop_rate: float, drop_path_rate: float, norm_cfg: dict):
        super().__init__()
        self.cpe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = GroupMixAttention(dim, num_heads=num_heads, qkv_bias=qkv_bias,
                                      proj_drop=drop_rate, norm_cfg=norm_cfg)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate)

    def forward(self, x, hw_shape):
        x = x + image_to_tokens(self.cpe(tokens_to_image(x, hw_shape)))
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_backbone
class GroupMixFormer(DenseBackbone):
    """GroupMixFormer backbone returning maps at strides 4, 8, 16 and 32 for any input size.

    Args:
        arch (str | dict): ``mini``, ``tiny``, ``small``, ``base``, ``large`` (the official M/T/S/B/L),
            or a dict with ``embed_dims``, ``depths`` and ``mlp_ratios`` (one per stage).
        num_heads (int): Attention heads in every stage (the official 8); 4/5 of every stage's
            channels must divide by it. The relative position convolutions take a third of the
            heads per kernel size (3, 5, 7), the remainder going to the larger kernels.
        qkv_bias (bool): Bias of the qkv projection. Defaults to True.
        drop_rate (float): Dropout after attention and MLP. Defaults to 0.
        final_norm (bool): Norm the last stage's output (the classifier's BN). Defaults to False.
        norm_outputs (bool): A new norm (``norm_cfg``) on every returned map, for dense
            prediction: the stages end unnormalised, at very different scales. Defaults to False.
        norm_cfg (dict): Norm of the convolutional parts. Defaults to BN (SyncBN in dist configs).
        in_channels, out_indices, frozen_stages, norm_eval, with_cp, drop_path_rate, init_cfg: see
            :class:`DenseBackbone`.
    """

    arch_zoo = {
        'mini': dict(embed_dims=[40, 80, 160, 160], depths=[3, 3, 12, 4], mlp_ratios=[4, 4, 4, 4]),
        'tiny': dict(embed_dims=[80, 160, 200, 240], depths=[4, 4, 12, 4], mlp_ratios=[4, 4, 4, 4]),
        'small': dict(embed_dims=[80, 160, 320, 320], depths=[2, 4, 12, 4], mlp_ratios=[4, 4, 4, 4]),
        'base': dict(embed_dims=[200, 240, 320, 480], depths=[8, 8, 12, 8], mlp_ratios=[2, 2, 4, 4]),
        'large': dict(embed_dims=[240, 320, 360, 480], depths=[8, 10, 30, 10],
                      mlp_ratios=[4, 4, 2, 2]),
    }
    arch_keys = ('embed_dims', 'depths', 'mlp_ratios')
    stem_name = 'stem'
    # version 1 (to 5d88427 and after): the patch embeddings in ``patch_embeds``, the blocks as
    # the items of each stage
    _version = 2
    key_renames = {2: ((r'^patch_embeds\.(\d+)\.', r'stages.\1.downsample.'),
                       (r'^stages\.(\d+)\.(\d+)\.', r'stages.\1.blocks.\2.'))}

    def __init__(self, arch='small', in_channels=3, num_heads=8, qkv_bias=True, drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 final_norm=False, norm_outputs=False, norm_cfg=dict(type='BN', requires_grad=True),
                 with_cp=False, init_cfg=None):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices,
                         frozen_stages=frozen_stages, norm_eval=norm_eval, with_cp=with_cp,
                         drop_path_rate=drop_path_rate, init_cfg=init_cfg)
        settings = self.arch_settings
        dims = self.embed_dims = list(settings['embed_dims'])
        self.stem = ConvStem(in_channels, dims[0], norm_cfg=norm_cfg)
        self.stages = nn.ModuleList(
            TokenStage([GroupMixBlock(dims[i], num_heads=num_heads,
                                      mlp_ratio=settings['mlp_ratios'][i], qkv_bias=qkv_bias,
                                      drop_rate=drop_rate, drop_path_rate=rate,
                                      norm_cfg=norm_cfg) for rate in rates],
                       downsample=PatchEmbed(dims[max(i - 1, 0)], dims[i],
                                             stride=1 if i == 0 else 2, norm_cfg=norm_cfg))
            for i, rates in enumerate(self.drop_path_rates))
        self.build_output_norms(partial(build_norm, norm_cfg), final_norm=final_norm,
                                norm_outputs=norm_outputs)
        self.finish_build()
