"""FLatten Transformer: Focused Linear Attention (Han et al., "FLatten Transformer: Vision Transformer
using Focused Linear Attention", ICCV 2023) inside four hosts, as backbones for classification,
detection and segmentation.

Focused linear attention maps q and k through ``phi(x) = ||y|| * y**p / ||y**p||`` with
``y = relu(x) / softplus(s)`` (focusing factor ``p``, learned scale ``s``), computes ``phi(k)^T v``
first (linear in the number of tokens), normalises by ``phi(q) mean(phi(k))`` and adds a depthwise
convolution of v (``dwc``) that restores the rank of the attention matrix. A learned position
encoding, sized for the pre-training map, is added to k and interpolated to other map sizes.

Hosts (released settings as in the official repository, LeapLabTHU/FLatten-Transformer):

* :class:`FLattenPVT` / :class:`FLattenPVTv2`: linear attention in all four stages, on the whole map
  (no spatial reduction, the released ``la_sr_ratios=1111``).
* :class:`FLattenSwin`: linear attention in stages 1-2, global on the map (the released 56 / 96
  windows equal the stage-1 map at 224 / 384); shifted-window softmax attention (7x7, 12x12 at 384)
  with relative position bias in stages 3-4.
* :class:`FLattenCSWin`: linear attention on the whole map in stages 1-2 (the released split sizes
  56-28 / 96-48 equal the map); cross-shaped stripe softmax attention with LePE in stage 3 (split 7,
  12 at 384) and whole-map softmax attention in stage 4.

Every host accepts any input size and returns maps at strides 4/8/16/32 of size
``ceil(H / s) x ceil(W / s)``. Softmax attention runs through ``scaled_dot_product_attention``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_

from ..registry import register_backbone
from .base import (DenseBackbone, adapt_saved_grid, drop_path_schedule, image_to_tokens,
                   pad_for_strided_conv, pad_to_multiple, resize_pos_embed, resolve_arch,
                   tokens_to_image, window_partition, window_reverse)

MASK_VALUE = -1e4  # additive attention mask of keys a query must not see (finite: no NaN rows)


def _check_attn_types(family, attn_types, num_stages):
    if len(attn_types) != num_stages or set(attn_types) - set('LS'):
        raise ValueError(f'{family} attn_types must give L (focused linear) or S (softmax) for each '
                         f'of the {num_stages} stages, got {attn_types!r}.')


def _sdpa(q, k, v, attn_mask, dropout_p, training):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                          dropout_p=dropout_p if training else 0.)


# ----------------------------------------------------------------------------- focused linear attention
class FocusedLinearAttention(nn.Module):
    """The FLatten module on q, k, v tokens (B, N, C) of one map; hosts add the projections.

    Args:
        dim (int): Channels of q, k and v.
        num_heads (int): Heads.
        pos_hw (tuple): Grid of the learned key position encoding (the pre-training map).
        focusing_factor (float): Power ``p`` of the focused kernel. Defaults to 3.
        kernel_size (int): Kernel of the depthwise rank-restoring conv ``dwc``. Defaults to 5.
    """

    def __init__(self, dim, num_heads, pos_hw, focusing_factor=3, kernel_size=5):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}.')
        head_dim = dim // num_heads
        self.num_heads = num_heads
        self.focusing_factor = focusing_factor
        self.pos_hw = tuple(pos_hw)
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2,
                             groups=head_dim)
        self.focus_scale = nn.Parameter(torch.zeros(1, 1, dim))
        self.key_pos_embed = nn.Parameter(torch.zeros(1, self.pos_hw[0] * self.pos_hw[1], dim))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        adapt_saved_grid(state_dict, prefix + 'key_pos_embed', self.key_pos_embed, self.pos_hw)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _focus(self, x, scale):
        x = (F.relu(x) + 1e-6) / scale
        norm = x.norm(dim=-1, keepdim=True)
        x = x ** self.focusing_factor
        return x / x.norm(dim=-1, keepdim=True) * norm

    def attend(self, q, k, v, hw_shape):
        """q, k, v: (B, N, C) tokens of a map of ``hw_shape`` -> (B, N, C), before projection."""
        B, N, C = q.shape
        k = k + resize_pos_embed(self.key_pos_embed, self.pos_hw, hw_shape, mode='bicubic')
        scale = F.softplus(self.focus_scale)
        q, k = self._focus(q, scale), self._focus(k, scale)
        q, k, v = (t.reshape(B, N, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        # (B, heads, d, d) context first: cost linear in N (scaled before the product, as the official)
        context = (k.transpose(-2, -1) * N ** -0.5) @ (v * N ** -0.5)
        normaliser = 1 / (q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1) + 1e-6)
        out = (q @ context * normaliser).transpose(1, 2).reshape(B, N, C)
        v_maps = v.reshape(B * self.num_heads, *hw_shape, -1).permute(0, 3, 1, 2)
        return out + self.dwc(v_maps).reshape(B, C, N).transpose(1, 2)


# ----------------------------------------------------------------------------- PVT and PVTv2
class PVTLinearAttention(FocusedLinearAttention):
    """Focused linear attention of a PVT block: q and kv projections of the whole map."""

    def __init__(self, dim, num_heads, pos_hw, qkv_bias=True, proj_drop=0., focusing_factor=3,
                 kernel_size=5):
        super().__init__(dim, num_heads, pos_hw, focusing_factor, kernel_size)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, hw_shape):
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.proj_drop(self.proj(self.attend(self.q(x), k, v, hw_shape)))


class PVTSoftmaxAttention(nn.Module):
    """PVT spatial-reduction softmax attention: keys and values from a map shrunk ``sr_ratio`` times
    by a strided conv (padded to a multiple of it)."""

    def __init__(self, dim, num_heads, qkv_bias=True, sr_ratio=1, attn_drop=0., proj_drop=0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, -1).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(image_to_tokens(self.sr(pad_to_multiple(
                tokens_to_image(x, hw_shape), self.sr_ratio))))
        k, v = self.kv(x).reshape(B, -1, 2, self.num_heads, C // self.num_heads).permute(
            2, 0, 3, 1, 4)
        out = _sdpa(q, k, v, None, self.attn_drop, self.training)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))


class ConvMlp(nn.Module):
    """PVTv2 MLP: fc1, 3x3 depthwise conv on the map, GELU, fc2."""

    def __init__(self, dim, hidden_dim, drop=0.):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x, hw_shape):
        x = image_to_tokens(self.dwconv(tokens_to_image(self.fc1(x), hw_shape)))
        return self.drop(self.fc2(self.drop(self.act(x))))


class PVTBlock(nn.Module):
    """Pre-norm attention (focused linear or spatial-reduction softmax) and MLP residuals."""

    def __init__(self, dim, num_heads, mlp_ratio, attn_type, pos_hw, sr_ratio, qkv_bias,
                 focusing_factor, kernel_size, drop_rate, attn_drop_rate, drop_path, conv_mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if attn_type == 'L':
            self.attn = PVTLinearAttention(dim, num_heads, pos_hw, qkv_bias, drop_rate,
                                           focusing_factor, kernel_size)
        else:
            self.attn = PVTSoftmaxAttention(dim, num_heads, qkv_bias, sr_ratio, attn_drop_rate,
                                            drop_rate)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.conv_mlp = conv_mlp
        self.mlp = ConvMlp(dim, hidden, drop_rate) if conv_mlp else Mlp(dim, hidden, drop=drop_rate)

    def forward(self, x, hw_shape):
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        y = self.norm2(x)
        return x + self.drop_path(self.mlp(y, hw_shape) if self.conv_mlp else self.mlp(y))


class PVTPatchEmbed(nn.Module):
    """Strided conv patch embedding and LayerNorm; PVT's with an absolute position embedding.

    ``overlap=False`` (PVT): kernel = stride = ``patch_size`` on the input padded to a multiple of it;
    ``overlap=True`` (PVTv2): kernel ``2 * stride - 1`` with padding ``kernel // 2``. Both give
    ``ceil(H / stride)``. ``pos_hw`` (PVT) adds a learned embedding for that grid, resized
    bilinearly (as the official) to the map.
    """

    def __init__(self, in_channels, dim, stride, overlap, pos_hw=None, drop_rate=0.):
        super().__init__()
        self.stride = stride
        self.overlap = overlap
        kernel = 2 * stride - 1 if overlap else stride
        self.proj = nn.Conv2d(in_channels, dim, kernel, stride, kernel // 2 if overlap else 0)
        self.norm = nn.LayerNorm(dim)
        self.pos_hw = tuple(pos_hw) if pos_hw else None
        if self.pos_hw:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_hw[0] * self.pos_hw[1], dim))
            self.pos_drop = nn.Dropout(drop_rate)

    def forward(self, x, hw_shape=None):
        """x: an image (B, C, H, W), or tokens (B, N, C) of a ``hw_shape`` map."""
        if hw_shape is not None:
            x = tokens_to_image(x, hw_shape)
        x = self.proj(x if self.overlap else pad_to_multiple(x, self.stride))
        hw_shape = tuple(x.shape[2:])
        x = self.norm(image_to_tokens(x))
        if self.pos_hw:
            x = self.pos_drop(x + resize_pos_embed(self.pos_embed, self.pos_hw, hw_shape,
                                                   mode='bilinear'))
        return x, hw_shape


# ----------------------------------------------------------------------------- Swin
class SwinLinearAttention(FocusedLinearAttention):
    """Focused linear attention of a Swin block, on the whole map (qkv projection)."""

    def __init__(self, dim, num_heads, pos_hw, qkv_bias=True, proj_drop=0., focusing_factor=3,
                 kernel_size=5):
        super().__init__(dim, num_heads, pos_hw, focusing_factor, kernel_size)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, hw_shape):
        return self.proj_drop(self.proj(self.attend(*self.qkv(x).chunk(3, dim=-1), hw_shape)))


class ShiftedWindowAttention(nn.Module):
    """Window softmax attention with relative position bias, shifted by half a window when
    ``shifted`` and the map is larger than one window. The map is padded to window multiples;
    padded keys and keys of other shift regions are masked."""

    def __init__(self, dim, num_heads, window_size, shifted, qkv_bias=True, attn_drop=0.,
                 proj_drop=0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.window_size = window_size
        self.shifted = shifted
        self.attn_drop = attn_drop
        self.rel_pos_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size),
                                            indexing='ij')).flatten(1)  # (2, w*w)
        rel = (coords[:, :, None] - coords[:, None, :]) + window_size - 1
        self.register_buffer('rel_pos_index', rel[0] * (2 * window_size - 1) + rel[1],
                             persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        side = 2 * self.window_size - 1
        adapt_saved_grid(state_dict, prefix + 'rel_pos_table', self.rel_pos_table, (side, side))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _region_mask(self, hw_shape, padded_hw, shift, device):
        """(num_windows, w*w, w*w) additive mask, or None when every window is whole and unshifted."""
        (H, W), (Hp, Wp), w = hw_shape, padded_hw, self.window_size
        if not shift and (H, W) == (Hp, Wp):
            return None
        rows, cols = torch.arange(Hp, device=device), torch.arange(Wp, device=device)
        valid = (rows[:, None] < H) & (cols[None, :] < W)
        region = torch.zeros(Hp, Wp, device=device, dtype=torch.long)
        if shift:  # regions of the rolled map: [0, P-w), [P-w, P-shift), [P-shift, P) on each axis
            row_id = (rows >= Hp - w).long() + (rows >= Hp - shift).long()
            col_id = (cols >= Wp - w).long() + (cols >= Wp - shift).long()
            region = row_id[:, None] * 3 + col_id[None, :]
            valid = valid.roll((-shift, -shift), dims=(0, 1))
        region = window_partition(region[None, :, :, None], w)[..., 0]  # (nW, w*w)
        valid = window_partition(valid[None, :, :, None], w)[..., 0]
        blocked = (region[:, :, None] != region[:, None, :]) | ~valid[:, None, :]
        return torch.zeros(blocked.shape, device=device).masked_fill(blocked, MASK_VALUE)

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        (H, W), w = hw_shape, self.window_size
        shift = w // 2 if self.shifted and min(H, W) > w else 0
        x = pad_to_multiple(x.reshape(B, H, W, C), w, channels_last=True)
        padded_hw = tuple(x.shape[1:3])
        if shift:
            x = x.roll((-shift, -shift), dims=(1, 2))
        windows = window_partition(x, w)  # (B * nW, w*w, C)
        num_windows, n = windows.shape[0] // B, w * w
        q, k, v = self.qkv(windows).reshape(B, num_windows, n, 3, self.num_heads, -1).permute(
            3, 0, 1, 4, 2, 5)  # each (B, nW, heads, n, d)
        bias = self.rel_pos_table[self.rel_pos_index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        mask = self._region_mask((H, W), padded_hw, shift, x.device)
        bias = bias if mask is None else bias + mask[:, None]  # (heads | nW x heads, n, n)
        out = _sdpa(q, k, v, bias.to(q.dtype), self.attn_drop, self.training)
        out = window_reverse(out.transpose(2, 3).reshape(B * num_windows, n, C), w, padded_hw)
        if shift:
            out = out.roll((shift, shift), dims=(1, 2))
        out = out[:, :H, :W].reshape(B, N, C)
        return self.proj_drop(self.proj(out))


class SwinBlock(nn.Module):
    """Pre-norm attention (global focused linear, or shifted-window softmax) and MLP residuals."""

    def __init__(self, dim, num_heads, attn_type, window_size, shifted, pos_hw, mlp_ratio, qkv_bias,
                 focusing_factor, kernel_size, drop_rate, attn_drop_rate, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        if attn_type == 'L':
            self.attn = SwinLinearAttention(dim, num_heads, pos_hw, qkv_bias, drop_rate,
                                            focusing_factor, kernel_size)
        else:
            self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shifted, qkv_bias,
                                               attn_drop_rate, drop_rate)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate)

    def forward(self, x, hw_shape):
        x = x + self.drop_path(self.attn(self.norm1(x), hw_shape))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinPatchMerging(nn.Module):
    """2x2 neighbourhood concatenation (map padded to even), LayerNorm and a linear reduction."""

    def __init__(self, dim, out_dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x, hw_shape):
        x = pad_to_multiple(x.reshape(x.shape[0], *hw_shape, -1), 2, channels_last=True)
        # official order: (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        hw_shape = tuple(x.shape[1:3])
        return self.reduction(self.norm(x.flatten(1, 2))), hw_shape


class ConvPatchEmbed(nn.Module):
    """Strided conv (input padded so the output is ``ceil(H / stride)``) and LayerNorm."""

    def __init__(self, in_channels, dim, kernel_size, stride, padding, drop_rate=0.):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size, stride, padding)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x, hw_shape=None):
        """x: an image (B, C, H, W), or tokens (B, N, C) of a ``hw_shape`` map."""
        if hw_shape is not None:
            x = tokens_to_image(x, hw_shape)
        conv = self.proj
        x = conv(pad_for_strided_conv(x, conv.kernel_size, conv.stride, conv.padding))
        return self.drop(self.norm(image_to_tokens(x))), tuple(x.shape[2:])


# ----------------------------------------------------------------------------- CSWin
def _lepe(conv, v, window_hw):
    """Locally-enhanced position encoding: depthwise conv of v inside each window; v: (B', n, C)."""
    v = v.transpose(1, 2).reshape(v.shape[0], v.shape[2], *window_hw)
    return image_to_tokens(conv(v))


class CSWinLinearAttention(FocusedLinearAttention):
    """Whole-map focused linear attention branch of a CSWin block, plus LePE."""

    def __init__(self, dim, num_heads, pos_hw, focusing_factor=3, kernel_size=5):
        super().__init__(dim, num_heads, pos_hw, focusing_factor, kernel_size)
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, q, k, v, hw_shape):
        return self.attend(q, k, v, hw_shape) + _lepe(self.lepe, v, hw_shape)


class CSWinStripeAttention(nn.Module):
    """Softmax attention branch of a CSWin block with LePE, in stripes of width ``split_size``:
    ``direction`` 0 for vertical stripes (full height), 1 for horizontal ones, None for the whole
    map. Maps are padded to stripe multiples; padded keys are masked."""

    def __init__(self, dim, num_heads, split_size, direction, attn_drop=0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} must be divisible by num_heads {num_heads}.')
        self.num_heads = num_heads
        self.split_size = split_size
        self.direction = direction
        self.attn_drop = attn_drop
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, q, k, v, hw_shape):
        B, N, C = q.shape
        H, W = hw_shape
        s = self.split_size
        window = {None: (H, W), 0: (H, s), 1: (s, W)}[self.direction]
        qkv = pad_to_multiple(torch.cat([q, k, v], -1).reshape(B, H, W, 3 * C), window,
                              channels_last=True)
        padded_hw = tuple(qkv.shape[1:3])
        windows = window_partition(qkv, window)  # (B * nW, n, 3C)
        num_windows, n = windows.shape[0] // B, window[0] * window[1]
        q, k, v = windows.chunk(3, dim=-1)
        lepe = _lepe(self.lepe, v, window)
        q, k, v, lepe = (t.reshape(B, num_windows, n, self.num_heads, -1).transpose(2, 3)
                         for t in (q, k, v, lepe))  # (B, nW, heads, n, d)
        mask = None
        if padded_hw != (H, W):
            rows = torch.arange(padded_hw[0], device=q.device)[:, None] < H
            cols = torch.arange(padded_hw[1], device=q.device)[None, :] < W
            valid = window_partition((rows & cols)[None, :, :, None], window)[..., 0]  # (nW, n)
            mask = torch.zeros(valid.shape, device=q.device, dtype=q.dtype).masked_fill(
                ~valid, MASK_VALUE)[:, None, None, :]
        out = _sdpa(q, k, v, mask, self.attn_drop, self.training) + lepe
        out = window_reverse(out.transpose(2, 3).reshape(B * num_windows, n, C), window, padded_hw)
        return out[:, :H, :W].reshape(B, N, C)


class CSWinBlock(nn.Module):
    """qkv projection shared by one whole-map branch or two stripe branches (half the channels and
    heads each: vertical and horizontal), output projection, MLP; pre-norm residuals."""

    def __init__(self, dim, num_heads, attn_type, split_size, whole_map, pos_hw, mlp_ratio,
                 qkv_bias, focusing_factor, kernel_size, drop_rate, attn_drop_rate, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        if attn_type == 'L':
            if not whole_map:
                raise ValueError('FLattenCSWin supports focused linear attention on whole-map blocks '
                                 '(split size >= pre-training map, as released) only.')
            self.branches = nn.ModuleList(
                [CSWinLinearAttention(dim, num_heads, pos_hw, focusing_factor, kernel_size)])
        elif whole_map:
            self.branches = nn.ModuleList(
                [CSWinStripeAttention(dim, num_heads, split_size, None, attn_drop_rate)])
        else:
            self.branches = nn.ModuleList(
                CSWinStripeAttention(dim // 2, num_heads // 2, split_size, direction, attn_drop_rate)
                for direction in (0, 1))
        self.proj = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
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


# ----------------------------------------------------------------------------- hosts
class Stage(nn.Module):
    """One stage: an optional downsampling layer, blocks and an optional output norm."""

    def __init__(self, blocks, downsample=None, norm=None):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm


class FLattenBackbone(DenseBackbone):
    """Shared by the FLatten hosts: arch lookup, and the forward of ``patch_embed`` (the stem) and
    four :class:`Stage`."""

    def __init__(self, arch, required_keys, default_attn_types, pretrain_img_size, out_indices,
                 frozen_stages, norm_eval, with_cp, init_cfg):
        """Resolve ``arch`` into ``settings`` and ``attn_types`` (default: ``default_attn_types``,
        or linear everywhere), and ``grids``, each stage's map at the pre-training size."""
        family = type(self).__name__
        settings = resolve_arch(family, self.arch_zoo, arch, required_keys)
        num_stages = len(settings['depths'])
        attn_types = settings.get('attn_types', default_attn_types or 'L' * num_stages)
        _check_attn_types(family, attn_types, num_stages)
        super().__init__(num_stages, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        self.settings, self.attn_types = settings, attn_types
        pretrain_img_size = pretrain_img_size or settings.get('pretrain_img_size', 224)
        self.grids = _grids(pretrain_img_size, num_stages)

    def frozen_groups(self):
        return [self.patch_embed, *self.stages]

    def forward(self, x):
        x, hw_shape = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            if stage.downsample is not None:
                x, hw_shape = stage.downsample(x, hw_shape)
            for block in stage.blocks:
                x = self.run_block(block, x, hw_shape)
            if stage.norm is not None:
                x = stage.norm(x)
            if i in self.out_indices:
                last = i == self.num_stages - 1
                out = self.out_norm(x) if last and self.out_norm is not None else x
                outs.append(tokens_to_image(out, hw_shape))
        return tuple(outs)

    def init_weights(self):
        super().init_weights()
        if not (self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained'):
            for name, param in self.named_parameters():
                if name.endswith(('.pos_embed', '.rel_pos_table')):
                    trunc_normal_(param, std=.02)


def _drop_path_rates(drop_path_rate, depths):
    """:func:`drop_path_schedule`, also under a ``torch.device('meta')`` context (deferred init)."""
    with torch.device('cpu'):
        return drop_path_schedule(drop_path_rate, depths)


def _grids(pretrain_img_size, num_stages):
    return [(pretrain_img_size // 2 ** (i + 2),) * 2 for i in range(num_stages)]


class _PVTBase(FLattenBackbone):
    """PVT and PVTv2 hosts (they differ in patch embedding, position embedding, MLP and norms)."""

    arch_zoo = {}
    version = 1
    required_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios')

    def __init__(self, arch, in_channels, pretrain_img_size, qkv_bias, focusing_factor,
                 kernel_size, drop_rate, attn_drop_rate, drop_path_rate, out_indices, frozen_stages,
                 norm_eval, final_norm, with_cp, init_cfg):
        super().__init__(arch, self.required_keys, None, pretrain_img_size, out_indices,
                         frozen_stages, norm_eval, with_cp, init_cfg)
        settings, attn_types, grids = self.settings, self.attn_types, self.grids
        dims, depths = settings['embed_dims'], settings['depths']
        sr_ratios = settings.get('sr_ratios', [8, 4, 2, 1][-len(depths):])
        self.embed_dims = list(dims)
        v2 = self.version == 2

        def embed(i):
            return PVTPatchEmbed(in_channels if i == 0 else dims[i - 1], dims[i], 4 if i == 0 else 2,
                                 overlap=v2, pos_hw=None if v2 else grids[i], drop_rate=drop_rate)

        self.patch_embed = embed(0)
        self.stages = nn.ModuleList(
            Stage([PVTBlock(dims[i], settings['num_heads'][i], settings['mlp_ratios'][i],
                            attn_types[i], grids[i], sr_ratios[i], qkv_bias, focusing_factor,
                            kernel_size, drop_rate, attn_drop_rate, rate, conv_mlp=v2)
                   for rate in rates],
                  downsample=embed(i) if i else None,
                  norm=nn.LayerNorm(dims[i], eps=1e-6) if v2 else None)
            for i, rates in enumerate(_drop_path_rates(drop_path_rate, depths)))
        self.out_norm = nn.LayerNorm(dims[-1], eps=1e-6) if final_norm else None
        self._freeze_stages()

    @staticmethod
    def _init_module(module):
        DenseBackbone._init_module(module)
        if isinstance(module, nn.Conv2d):  # fan-out normal, as the official PVTv2
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0, (2.0 / (fan_out // module.groups)) ** 0.5)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@register_backbone
class FLattenPVT(_PVTBase):
    """FLatten-PVT backbone: PVT with focused linear attention in every stage.

    Args:
        arch (str | dict): ``tiny``, ``small``, ``medium``, ``large`` (official FLatten-PVT-T/S/M/B,
            the last built by ``flatten_pvt_large``), or a dict with ``embed_dims``, ``depths``,
            ``num_heads``, ``mlp_ratios`` and optionally ``attn_types`` (``'LLLL'``; ``S`` =
            spatial-reduction softmax attention), ``sr_ratios`` (of the S stages, ``[8, 4, 2, 1]``)
            and ``pretrain_img_size``.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int, optional): Image size the position embeddings are sized for;
            defaults to the arch's (224). Other input sizes interpolate them.
        qkv_bias (bool): Bias of the q and kv projections. Defaults to True.
        focusing_factor (float): Power of the focused kernel. Defaults to 3.
        kernel_size (int): Kernel of the depthwise rank-restoring conv. Defaults to 5.
        drop_rate / attn_drop_rate / drop_path_rate (float): Dropouts and stochastic depth.
        out_indices (Sequence[int]): Stages whose outputs are returned. Defaults to (0, 1, 2, 3).
        frozen_stages (int): Freeze the first patch embedding and stages 1..k; -1 freezes nothing.
        norm_eval (bool): Keep BatchNorm layers (none by default) in eval mode while training.
        final_norm (bool): LayerNorm the last output. Defaults to False: the official FLatten-PVT
            classifier averages the un-normed last stage (its ``norm`` is built but never used).
        with_cp (bool): Activation checkpointing of each block.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    """

    _common = dict(embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                   attn_types='LLLL', sr_ratios=[8, 4, 2, 1], pretrain_img_size=224)
    arch_zoo = {
        'tiny': dict(_common, depths=[2, 2, 2, 2]),
        'small': dict(_common, depths=[3, 4, 6, 3]),
        'medium': dict(_common, depths=[3, 4, 18, 3]),
        'large': dict(_common, depths=[3, 8, 27, 3]),
    }
    version = 1

    def __init__(self, arch='tiny', in_channels=3, pretrain_img_size=None, qkv_bias=True,
                 focusing_factor=3, kernel_size=5, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 final_norm=False, with_cp=False, init_cfg=None):
        super().__init__(arch, in_channels, pretrain_img_size, qkv_bias, focusing_factor,
                         kernel_size, drop_rate, attn_drop_rate, drop_path_rate, out_indices,
                         frozen_stages, norm_eval, final_norm, with_cp, init_cfg)


@register_backbone
class FLattenPVTv2(_PVTBase):
    """FLatten-PVTv2 backbone: PVTv2 (overlapping patch embeddings, conv MLP, a LayerNorm ending
    every stage) with focused linear attention in every stage.

    Args:
        arch (str | dict): ``b0`` .. ``b5`` (official FLatten-PVTv2-B0..B5), or a dict as for
            :class:`FLattenPVT`.
        Every stage output is normed by its own LayerNorm (official), so there is no ``final_norm``;
        the other arguments are those of :class:`FLattenPVT`.
    """

    _common = dict(embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                   attn_types='LLLL', sr_ratios=[8, 4, 2, 1], pretrain_img_size=224)
    arch_zoo = {
        'b0': dict(_common, embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2]),
        'b1': dict(_common, depths=[2, 2, 2, 2]),
        'b2': dict(_common, depths=[3, 4, 6, 3]),
        'b3': dict(_common, depths=[3, 4, 18, 3]),
        'b4': dict(_common, depths=[3, 8, 27, 3]),
        'b5': dict(_common, depths=[3, 6, 40, 3], mlp_ratios=[4, 4, 4, 4]),
    }
    version = 2

    def __init__(self, arch='b0', in_channels=3, pretrain_img_size=None, qkv_bias=True,
                 focusing_factor=3, kernel_size=5, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 with_cp=False, init_cfg=None):
        super().__init__(arch, in_channels, pretrain_img_size, qkv_bias, focusing_factor,
                         kernel_size, drop_rate, attn_drop_rate, drop_path_rate, out_indices,
                         frozen_stages, norm_eval, False, with_cp, init_cfg)


@register_backbone
class FLattenSwin(FLattenBackbone):
    """FLatten-Swin backbone: Swin with global focused linear attention in the ``L`` stages and
    shifted-window softmax attention in the ``S`` stages.

    Args:
        arch (str | dict): ``tiny``, ``small``, ``base`` (224, official window 56 -> softmax windows
            7) or ``base_384`` (official 384 fine-tuned model: window 96 -> softmax windows 12), or a
            dict with ``embed_dims`` (stage-1 channels, doubled per stage), ``depths``,
            ``num_heads``, ``window_size`` (softmax windows) and optionally ``attn_types``
            (``'LLSS'``), ``mlp_ratio`` (4) and ``pretrain_img_size`` (224).
        pretrain_img_size (int, optional): Image size the linear attention's position encodings
            (one per stage-map token) and the window clipping are set for; defaults to the arch's.
        final_norm (bool): LayerNorm the last output (the classifier's norm). Defaults to False.
        The other arguments are those of :class:`FLattenPVT`.

    Linear-attention stages attend over the whole map (the released 56 / 96 windows equal the
    stage-1 map of the 224 / 384 models, so their linear blocks are global); softmax windows are
    ``min(window_size, pre-training map)`` as in the official, shifted in odd blocks when the map
    is larger than a window.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                     attn_types='LLSS', pretrain_img_size=224),
        'small': dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], window_size=7,
                      attn_types='LLSS', pretrain_img_size=224),
        'base': dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=7,
                     attn_types='LLSS', pretrain_img_size=224),
        'base_384': dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                         window_size=12, attn_types='LLSS', pretrain_img_size=384),
    }

    def __init__(self, arch='tiny', in_channels=3, pretrain_img_size=None, qkv_bias=True,
                 focusing_factor=3, kernel_size=5, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 final_norm=False, with_cp=False, init_cfg=None):
        super().__init__(arch, ('embed_dims', 'depths', 'num_heads', 'window_size'), 'LLSS',
                         pretrain_img_size, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        settings, attn_types, grids = self.settings, self.attn_types, self.grids
        depths = settings['depths']
        dims = [settings['embed_dims'] * 2 ** i for i in range(self.num_stages)]
        self.embed_dims = dims
        self.patch_embed = ConvPatchEmbed(in_channels, dims[0], 4, 4, 0, drop_rate)
        self.stages = nn.ModuleList(
            Stage([SwinBlock(dims[i], settings['num_heads'][i], attn_types[i],
                             min(settings['window_size'], grids[i][0]), j % 2 == 1, grids[i],
                             settings.get('mlp_ratio', 4.), qkv_bias, focusing_factor, kernel_size,
                             drop_rate, attn_drop_rate, rate)
                   for j, rate in enumerate(rates)],
                  downsample=SwinPatchMerging(dims[i - 1], dims[i]) if i else None)
            for i, rates in enumerate(_drop_path_rates(drop_path_rate, depths)))
        self.out_norm = nn.LayerNorm(dims[-1]) if final_norm else None
        self._freeze_stages()


@register_backbone
class FLattenCSWin(FLattenBackbone):
    """FLatten-CSWin backbone: CSWin with whole-map focused linear attention in the ``L`` stages and
    cross-shaped stripe softmax attention (LePE) in the ``S`` stages.

    Args:
        arch (str | dict): ``tiny``, ``small``, ``base`` (224) or ``base_384`` (official 384 model),
            or a dict with ``embed_dims`` (stage-1 channels, doubled per stage), ``depths``,
            ``num_heads``, ``split_sizes`` (per stage) and optionally ``attn_types`` (``'LLSS'``),
            ``mlp_ratio`` (4) and ``pretrain_img_size`` (224).
        pretrain_img_size (int, optional): Image size the linear attention's position encodings are
            sized for; defaults to the arch's.
        final_norm (bool): LayerNorm the last output (the classifier's norm). Defaults to False.
        The other arguments are those of :class:`FLattenPVT`.

    A block attends over the whole map (one branch) in the last stage and where the split size is
    at least the pre-training map (the released linear stages: 56-28 at 224, 96-48 at 384);
    otherwise it has two half-channel branches of vertical and horizontal stripes of that width.
    """

    arch_zoo = {
        'tiny': dict(embed_dims=64, depths=[2, 4, 18, 1],
                     num_heads=[2, 4, 8, 16], split_sizes=[56, 28, 7, 7], attn_types='LLSS',
                     pretrain_img_size=224),
        'small': dict(embed_dims=64, depths=[2, 4, 32, 2], num_heads=[2, 4, 8, 16],
                      split_sizes=[56, 28, 7, 7], attn_types='LLSS', pretrain_img_size=224),
        'base': dict(embed_dims=96, depths=[3, 6, 29, 2], num_heads=[4, 8, 16, 32],
                     split_sizes=[56, 28, 7, 7], attn_types='LLSS', pretrain_img_size=224),
        'base_384': dict(embed_dims=96, depths=[3, 6, 29, 2], num_heads=[4, 8, 16, 32],
                         split_sizes=[96, 48, 12, 12], attn_types='LLSS', pretrain_img_size=384),
    }

    def __init__(self, arch='tiny', in_channels=3, pretrain_img_size=None, qkv_bias=True,
                 focusing_factor=3, kernel_size=5, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 final_norm=False, with_cp=False, init_cfg=None):
        super().__init__(arch, ('embed_dims', 'depths', 'num_heads', 'split_sizes'), 'LLSS',
                         pretrain_img_size, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        settings, attn_types, grids = self.settings, self.attn_types, self.grids
        depths = settings['depths']
        dims = [settings['embed_dims'] * 2 ** i for i in range(self.num_stages)]
        self.embed_dims = dims
        splits = settings['split_sizes']
        self.patch_embed = ConvPatchEmbed(in_channels, dims[0], 7, 4, 2)
        self.stages = nn.ModuleList(
            Stage([CSWinBlock(dims[i], settings['num_heads'][i], attn_types[i], splits[i],
                              i == self.num_stages - 1 or splits[i] >= grids[i][0], grids[i],
                              settings.get('mlp_ratio', 4.), qkv_bias, focusing_factor,
                              kernel_size, drop_rate, attn_drop_rate, rate) for rate in rates],
                  downsample=ConvPatchEmbed(dims[i - 1], dims[i], 3, 2, 1) if i else None)
            for i, rates in enumerate(_drop_path_rates(drop_path_rate, depths)))
        self.out_norm = nn.LayerNorm(dims[-1]) if final_norm else None
        self._freeze_stages()
