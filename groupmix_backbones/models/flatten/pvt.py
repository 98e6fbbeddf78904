"""FLatten-PVT and FLatten-PVTv2: PVT hosts of focused linear attention."""
import torch.nn as nn

from ...registry import register_backbone
from ..base import TokenStage
from ..layers import ConvPatchEmbed, PreNormBlock, SpatialReductionAttention, fan_out_normal_
from .common import FLattenBackbone, ProjectedLinearAttention


def pvt_block(dim, *, attn_type, num_heads, pos_hw, sr_ratio, qkv_bias, focusing_factor,
              kernel_size, drop_rate, attn_drop_rate, norm_cfg, **block):
    """A PVT block: focused linear attention (``L``) or spatial-reduction softmax attention."""
    if attn_type == 'L':
        attn = ProjectedLinearAttention(dim, fused_qkv=False, num_heads=num_heads, pos_hw=pos_hw,
                                        qkv_bias=qkv_bias, proj_drop=drop_rate,
                                        focusing_factor=focusing_factor, kernel_size=kernel_size)
    else:
        attn = SpatialReductionAttention(dim, num_heads=num_heads, sr_ratio=sr_ratio,
                                         qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                                         proj_drop=drop_rate, norm_cfg=norm_cfg)
    return PreNormBlock(dim, attn=attn, drop_rate=drop_rate, norm_cfg=norm_cfg, norm_eps=1e-6,
                        **block)


class _PVTHost(FLattenBackbone):
    """PVT and PVTv2, which differ in four choices (named as mmdet's PyramidVisionTransformer
    names them): overlapping patch embeddings, absolute position embeddings, a depthwise conv in
    the MLP and a LayerNorm ending every stage."""

    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios')
    optional_arch_keys = ('attn_types', 'sr_ratios')
    out_norm_eps = 1e-6
    overlap_patch_embed = False  # True: kernel 2 * stride - 1, padded; False: kernel = stride
    use_abs_pos_embed = True
    use_conv_ffn = False

    def build_layers(self, *, in_channels, drop_rate):
        settings, grids = self.arch_settings, self.grids
        dims = self.embed_dims = list(settings['embed_dims'])
        sr_ratios = settings.get('sr_ratios', [8, 4, 2, 1][-self.num_stages:])
        overlap = self.overlap_patch_embed

        def embed(i):
            stride = 4 if i == 0 else 2
            kernel = 2 * stride - 1 if overlap else stride
            return ConvPatchEmbed(in_channels if i == 0 else dims[i - 1], dims[i],
                                  kernel_size=kernel, stride=stride,
                                  padding=kernel // 2 if overlap else 0, norm_cfg=self.norm_cfg,
                                  pos_hw=grids[i] if self.use_abs_pos_embed else None,
                                  drop_rate=drop_rate)

        self.patch_embed = embed(0)
        self.stages = nn.ModuleList(
            TokenStage([pvt_block(dims[i], num_heads=settings['num_heads'][i],
                                 mlp_ratio=settings['mlp_ratios'][i], attn_type=self.attn_types[i],
                                 pos_hw=grids[i], sr_ratio=sr_ratios[i],
                                 conv_mlp=self.use_conv_ffn,
                                 drop_path_rate=rate, **self.block_options) for rate in rates],
                       downsample=embed(i) if i else None)
            for i, rates in enumerate(self.drop_path_rates))

    def init_module(self, module):
        super().init_module(module)
        if isinstance(module, nn.Conv2d):  # as the official PVTv2
            fan_out_normal_(module)


_PVT_COMMON = dict(embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                   attn_types='LLLL', sr_ratios=[8, 4, 2, 1])


@register_backbone
class FLattenPVT(_PVTHost):
    """FLatten-PVT backbone: PVT with focused linear attention in every stage.

    ``arch``: ``tiny`` (default), ``small``, ``medium``, ``large`` (official FLatten-PVT-T/S/M/B,
    the last built by ``flatten_pvt_large``), or a dict with ``embed_dims``, ``depths``,
    ``num_heads``, ``mlp_ratios`` and optionally ``attn_types`` (``'LLLL'``; ``S`` =
    spatial-reduction softmax attention), ``sr_ratios`` (of the S stages, ``[8, 4, 2, 1]``) and
    ``pretrain_img_size``. ``final_norm`` defaults to False: the official FLatten-PVT classifier
    averages the un-normed last stage (its ``norm`` is built but never used). The other arguments:
    :class:`~groupmix_backbones.models.flatten.common.FLattenBackbone`.
    """

    arch_zoo = {
        'tiny': dict(_PVT_COMMON, depths=[2, 2, 2, 2]),
        'small': dict(_PVT_COMMON, depths=[3, 4, 6, 3]),
        'medium': dict(_PVT_COMMON, depths=[3, 4, 18, 3]),
        'large': dict(_PVT_COMMON, depths=[3, 8, 27, 3]),
    }


@register_backbone
class FLattenPVTv2(_PVTHost):
    """FLatten-PVTv2 backbone: PVTv2 (overlapping patch embeddings, conv MLP, a LayerNorm ending
    every stage) with focused linear attention in every stage.

    ``arch``: ``b0`` (default) .. ``b5`` (official FLatten-PVTv2-B0..B5), or a dict as for
    :class:`FLattenPVT`. Every stage output is normed by its own LayerNorm (official), so
    ``final_norm`` is not an option. The other arguments:
    :class:`~groupmix_backbones.models.flatten.common.FLattenBackbone`.
    """

    arch_zoo = {
        'b0': dict(_PVT_COMMON, embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2]),
        'b1': dict(_PVT_COMMON, depths=[2, 2, 2, 2]),
        'b2': dict(_PVT_COMMON, depths=[3, 4, 6, 3]),
        'b3': dict(_PVT_COMMON, depths=[3, 4, 18, 3]),
        'b4': dict(_PVT_COMMON, depths=[3, 8, 27, 3]),
        'b5': dict(_PVT_COMMON, depths=[3, 6, 40, 3], mlp_ratios=[4, 4, 4, 4]),
    }
    overlap_patch_embed = True
    use_abs_pos_embed = False
    use_conv_ffn = True
    norm_places = {'stages': None}
