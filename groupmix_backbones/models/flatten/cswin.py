"""FLatten-CSWin: the CSWin host of focused linear attention."""

import torch
import torch.nn as nn

from ...registry import register_backbone
from ..base import TokenStage
from ..layers import (AttentionWeights, ConvPatchEmbed, Linear, Mlp, build_norm, check_heads,
                      drop_path, exporting, image_to_tokens, key_mask, map_windows, real_map,
                      softmax_attention, window_partition, window_probe_cells, window_reverse)
from .common import FLattenBackbone, FocusedLinearAttention


def _lepe(conv, v, window_hw):
    """Locally-enhanced position encoding: depthwise conv of v inside each window; v: (B', n, C)."""
    v = v.transpose(1, 2).reshape(v.shape[0], v.shape[2], *window_hw)
    return image_to_tokens(conv(v))


class CSWinLinearAttention(FocusedLinearAttention):
    """Whole-map focused linear attention branch of a CSWin block, plus LePE."""

    def __init__(self, dim, *, num_heads, pos_hw, focusing_factor=3, kernel_size=5):
        super().__init__(dim, num_heads=num_heads, pos_hw=pos_hw, focusing_factor=focusing_factor,
                         kernel_size=kernel_size)
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, q, k, v, hw_shape):
        return self.attend(q, k, v, hw_shape) + _lepe(self.lepe, v, hw_shape)


class CSWinStripeAttention(nn.Module):
    """Softmax attention branch of a CSWin block with LePE, in stripes of width ``split_size``:
    ``direction`` 0 for vertical stripes (full height), 1 for horizontal ones, None for the whole
    map. Maps are padded to stripe multiples; padded keys are masked."""

    def __init__(self, dim, *, num_heads, split_size, direction, attn_drop=0.):
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.split_size = split_size
        self.direction = direction
        self.attn_drop = attn_drop
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.attn_weights = AttentionWeights()

    def forward(self, q, k, v, hw_shape):
        B, N, C = q.shape
        H, W = hw_shape
        s = self.split_size
        window = {None: (H, W), 0: (H, s), 1: (s, W)}[self.direction]
        multiple = {None: 1, 0: (1, s), 1: (s, 1)}[self.direction]  # (the stripes' axis only)
        windows, padded_hw = map_windows(torch.cat([q, k, v], -1).reshape(B, H, W, 3 * C),
                                         window, multiple=multiple)  # (B * nW, n, 3C)
        num_windows = padded_hw[0] // window[0] * (padded_hw[1] // window[1])
        n = window[0] * window[1]
        q, k, v = windows.chunk(3, dim=-1)
        lepe = _lepe(self.lepe, v, window)
        q, k, v, lepe = (t.reshape(B, num_windows, n, self.num_heads, -1).transpose(2, 3)
                         for t in (q, k, v, lepe))  # (B, nW, heads, n, d)
        mask = None
        if exporting() or padded_hw != (H, W):  # (exported: masked at any size)
            valid = window_partition(real_map((H, W), padded_hw, q.device)[None, :, :, None],
                                     window)[..., 0]  # (nW, n)
            mask = key_mask(valid, q.dtype)[:, None, None, :]
        record = self.attn_weights.recorder(lambda: window_probe_cells(
            hw_shape, window, multiple=multiple, device=q.device))
        out = softmax_attention(q, k, v, mask=mask, record=record,
                                dropout_p=self.attn_drop if self.training else 0.) + lepe
        out = window_reverse(out.transpose(2, 3).reshape(B * num_windows, n, C), window, padded_hw)
        return out[:, :H, :W].reshape(B, N, C)


class CSWinBlock(nn.Module):
    """qkv projection shared by one whole-map branch or two stripe branches (half the channels and
    heads each: vertical and horizontal), output projection, MLP; pre-norm residuals."""

    def __init__(self, dim, *, num_heads, attn_type, split_size, whole_map, pos_hw, mlp_ratio,
                 drop_path_rate, qkv_bias, focusing_factor, kernel_size, drop_rate,
                 attn_drop_rate, norm_cfg):
        super().__init__()
        self.norm1 = build_norm(norm_cfg, dim)
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        if attn_type == 'L':
            if not whole_map:
                raise ValueError('FLattenCSWin supports focused linear attention on whole-map blocks '
                                 '(split size >= pre-training map, as released) only.')
            self.branches = nn.ModuleList([CSWinLinearAttention(
                dim, num_heads=num_heads, pos_hw=pos_hw, focusing_factor=focusing_factor,
                kernel_size=kernel_size)])
        elif whole_map:
            self.branches = nn.ModuleList([CSWinStripeAttention(
                dim, num_heads=num_heads, split_size=split_size, direction=None,
                attn_drop=attn_drop_rate)])
        else:
            self.branches = nn.ModuleList(
                CSWinStripeAttention(dim // 2, num_heads=num_heads // 2, split_size=split_size,
                                     direction=direction, attn_drop=attn_drop_rate)
                for direction in (0, 1))
        self.proj = Linear(dim, dim)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = build_norm(norm_cfg, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate)

    def forward(self, x, hw_shape):
        qkv = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        if len(self.branches) == 1:
            out = self.branches[0](*qkv, hw_shape)
        else:
            halves = [t.chunk(2, dim=-1) for t in qkv]
            out = torch.cat([branch(*(h[i] for h in halves), hw_shape)
                             for i, branch in enumerate(self.branches)], dim=-1)
        x = x + self.drop_path(self.proj(out))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_backbone
class FLattenCSWin(FLattenBackbone):
    """FLatten-CSWin backbone: CSWin with whole-map focused linear attention in the ``L`` stages and
    cross-shaped stripe softmax attention (LePE) in the ``S`` stages.

    ``arch``: ``tiny`` (default), ``small``, ``base`` (224) or ``base_384`` (official 384
    model), or a dict with ``embed_dims`` (per stage), ``depths``,
    ``num_heads``, ``split_sizes`` (per stage) and optionally ``attn_types`` (``'LLSS'``),
    ``mlp_ratio`` and ``pretrain_img_size`` (:attr:`arch_defaults`). The other arguments:
    :class:`~groupmix_backbones.models.flatten.common.FLattenBackbone`.

    A block attends over the whole map (one branch) in the last stage and where the split size is
    at least the pre-training map (the released linear stages: 56-28 at 224, 96-48 at 384);
    otherwise it has two half-channel branches of vertical and horizontal stripes of that width.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=[64, 128, 256, 512], depths=[2, 4, 18, 1],
                     num_heads=[2, 4, 8, 16], split_sizes=[56, 28, 7, 7], attn_types='LLSS'),
        'small': dict(embed_dims=[64, 128, 256, 512], depths=[2, 4, 32, 2], num_heads=[2, 4, 8, 16],
                      split_sizes=[56, 28, 7, 7], attn_types='LLSS'),
        'base': dict(embed_dims=[96, 192, 384, 768], depths=[3, 6, 29, 2], num_heads=[4, 8, 16, 32],
                     split_sizes=[56, 28, 7, 7], attn_types='LLSS'),
        'base_384': dict(embed_dims=[96, 192, 384, 768], depths=[3, 6, 29, 2],
                         num_heads=[4, 8, 16, 32], split_sizes=[96, 48, 12, 12], attn_types='LLSS',
                         pretrain_img_size=384),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'split_sizes')
    optional_arch_keys = ('attn_types', )
    arch_defaults = dict(FLattenBackbone.arch_defaults, mlp_ratio=4.)

    default_attn_types = 'LLSS'

    def build_layers(self, *, in_channels, drop_rate):
        settings, grids, norm_cfg = self.arch_settings, self.grids, self.norm_cfg
        dims = self.embed_dims = list(settings['embed_dims'])
        splits, last = settings['split_sizes'], self.num_stages - 1
        self.patch_embed = ConvPatchEmbed(in_channels, dims[0], kernel_size=7, stride=4, padding=2,
                                          norm_cfg=norm_cfg)
        self.stages = nn.ModuleList(
            TokenStage([CSWinBlock(dims[i], num_heads=settings['num_heads'][i],
                                   attn_type=self.attn_types[i], split_size=splits[i],
                                   whole_map=i == last or splits[i] >= grids[i][0], pos_hw=grids[i],
                                   mlp_ratio=settings['mlp_ratio'], drop_path_rate=rate,
                                   **self.block_options) for rate in rates],
                       downsample=ConvPatchEmbed(dims[i - 1], dims[i], kernel_size=3, stride=2,
                                                 padding=1, norm_cfg=norm_cfg) if i else None)
            for i, rates in enumerate(self.drop_path_rates))
