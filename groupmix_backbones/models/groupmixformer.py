"""GroupMixFormer: Group-Mix Attention (Ge et al., "Advancing Vision Transformers with Group-Mix
Attention", 2023) as a hierarchical backbone for classification, detection and segmentation.

Group-Mix Attention (:class:`~.layers.GroupMixAttention`, shared with the unified family's
U-GroupMix) splits q, k and v into five channel groups: one passes unchanged, three are aggregated
by separable convolutions (3x3, 5x5, 7x7) so that attention also relates token *groups*, and the
fifth bypasses attention through a local aggregator. Attention is the official efficient form,
``q (softmax_N(k)^T v)``, linear in the number of tokens, plus a convolutional relative position
term.
"""
import warnings
from functools import partial

import torch.nn as nn
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..registry import register_backbone
from .base import DenseBackbone, TokenStage
from .layers import (Fusable, GroupMixAttention, Mlp, SepConv2d, build_norm, drop_path, fold_bn,
                     image_to_tokens, tokens_to_image)


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
