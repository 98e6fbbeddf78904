"""FLatten-Swin: the Swin host of focused linear attention."""
import torch.nn as nn

from ...registry import register_backbone
from ..base import TokenStage
from ..layers import ConvPatchEmbed, PatchMerging, PreNormBlock, ShiftedWindowAttention
from .common import FLattenBackbone, ProjectedLinearAttention


def swin_block(dim, *, attn_type, num_heads, window_size, shifted, pos_hw, qkv_bias,
               focusing_factor, kernel_size, drop_rate, attn_drop_rate, norm_cfg, **block):
    """A Swin block: global focused linear attention (``L``) or shifted-window softmax attention."""
    if attn_type == 'L':
        attn = ProjectedLinearAttention(dim, fused_qkv=True, num_heads=num_heads, pos_hw=pos_hw,
                                        qkv_bias=qkv_bias, proj_drop=drop_rate,
                                        focusing_factor=focusing_factor, kernel_size=kernel_size)
    else:
        attn = ShiftedWindowAttention(dim, num_heads=num_heads, window_size=window_size,
                                      shifted=shifted, qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                                      proj_drop=drop_rate)
    return PreNormBlock(dim, attn=attn, drop_rate=drop_rate, norm_cfg=norm_cfg, **block)


@register_backbone
class FLattenSwin(FLattenBackbone):
    """FLatten-Swin backbone: Swin with global focused linear attention in the ``L`` stages and
    shifted-window softmax attention in the ``S`` stages.

    ``arch``: ``tiny`` (default), ``small``, ``base`` (224, official window 56 -> softmax
    windows 7) or ``base_384`` (official 384 fine-tuned model: window 96 -> softmax windows 12),
    or a dict with ``embed_dims`` (per stage), ``depths``,
    ``num_heads``, ``window_size`` (softmax windows) and optionally ``attn_types`` (``'LLSS'``),
    ``mlp_ratio`` and ``pretrain_img_size`` (the window clipping follows it; defaults:
    :attr:`arch_defaults`). The other
    arguments: :class:`~groupmix_backbones.models.flatten.common.FLattenBackbone`.

    Linear-attention stages attend over the whole map (the released 56 / 96 windows equal the
    stage-1 map of the 224 / 384 models, so their linear blocks are global); softmax windows are
    ``min(window_size, pre-training map)`` as in the official, shifted in odd blocks when the map
    is larger than a window.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                     window_size=7, attn_types='LLSS'),
        'small': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 18, 2],
                      num_heads=[3, 6, 12, 24], window_size=7, attn_types='LLSS'),
        'base': dict(embed_dims=[128, 256, 512, 1024], depths=[2, 2, 18, 2],
                     num_heads=[4, 8, 16, 32], window_size=7, attn_types='LLSS'),
        'base_384': dict(embed_dims=[128, 256, 512, 1024], depths=[2, 2, 18, 2],
                         num_heads=[4, 8, 16, 32], window_size=12, attn_types='LLSS',
                         pretrain_img_size=384),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'window_size')
    optional_arch_keys = ('attn_types', )
    arch_defaults = dict(FLattenBackbone.arch_defaults, mlp_ratio=4.)

    default_attn_types = 'LLSS'

    def build_layers(self, *, in_channels, drop_rate):
        settings, grids = self.arch_settings, self.grids
        dims = self.embed_dims = list(settings['embed_dims'])
        self.patch_embed = ConvPatchEmbed(in_channels, dims[0], kernel_size=4, stride=4,
                                          norm_cfg=self.norm_cfg, drop_rate=drop_rate)
        self.stages = nn.ModuleList(
            TokenStage([swin_block(dims[i], num_heads=settings['num_heads'][i],
                                  attn_type=self.attn_types[i],
                                  window_size=min(settings['window_size'], grids[i][0]),
                                  shifted=j % 2 == 1, pos_hw=grids[i],
                                  mlp_ratio=settings['mlp_ratio'], drop_path_rate=rate,
                                  **self.block_options)
                        for j, rate in enumerate(rates)],
                       downsample=PatchMerging(dims[i - 1], dims[i],
                                               norm_cfg=self.norm_cfg) if i else None)
            for i, rates in enumerate(self.drop_path_rates))
