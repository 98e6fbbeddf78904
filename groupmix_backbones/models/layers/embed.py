"""Patch embeddings and downsampling layers that give ``ceil(H / stride)`` maps for any size."""
import torch
import torch.nn as nn

from .norm import build_norm
from .shape import (SavedGrids, image_to_tokens, pad_for_strided_conv, pad_to_multiple,
                    tokens_to_image)
from .linear import Linear


class ConvPatchEmbed(SavedGrids, nn.Module):
    """Strided conv (input padded so that the output is ``ceil(H / stride)``), norm, an optional
    learned absolute position embedding of a ``pos_hw`` grid (PVT; resized bilinearly to the map,
    as the official) and dropout. Takes an image (B, C, H, W), or tokens (B, N, C) of a
    ``hw_shape`` map; returns tokens and their map's shape.

    PVT's embeddings are kernel = stride, padding 0; PVTv2's kernel ``2 * stride - 1``, padding
    ``stride - 1``; Swin's kernel = stride = 4; CSWin's 7/4/2 stem and 3/2/1 merges.
    """

    grid_mode = 'bilinear'

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, stride: int,
                 padding: int = 0, bias: bool = True, norm_cfg=dict(type='LN'), pos_hw=None,
                 drop_rate: float = 0.):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.norm = build_norm(norm_cfg, out_channels)
        self.pos_hw = tuple(pos_hw) if pos_hw else None
        if self.pos_hw:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_hw[0] * self.pos_hw[1],
                                                      out_channels))
        self.drop = nn.Dropout(drop_rate)

    def saved_grids(self):
        if self.pos_hw:
            yield 'pos_embed', self.pos_embed, self.pos_hw

    def forward(self, x, hw_shape=None):
        if hw_shape is not None:
            x = tokens_to_image(x, hw_shape)
        conv = self.proj
        x = conv(pad_for_strided_conv(x, conv.kernel_size, conv.stride, conv.padding))
        H, W = x.shape[2:]  # (unpacked: an FX proxy's shape unpacks, never iterates)
        hw_shape = (H, W)
        x = self.norm(image_to_tokens(x))
        if self.pos_hw:
            x = x + self.resized(self.pos_embed, self.pos_hw, hw_shape)
        return self.drop(x), hw_shape


class GridPositionEmbedding(SavedGrids, nn.Module):
    """A learned absolute position embedding ``weight`` (1, h*w, C) of a ``grid`` (h, w), added to
    tokens (B, N, C) of any ``hw_shape`` map after resizing with ``mode`` and ``align_corners`` (the
    defaults: bilinear, corners aligned, as U-PVT's detection code and loader; SG-Former: bicubic),
    on load as in the forward."""

    def __init__(self, dim: int, *, grid, mode: str = 'bilinear', align_corners: bool = True):
        super().__init__()
        self.grid = tuple(grid)
        self.grid_mode, self.grid_align_corners = mode, align_corners
        self.weight = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))

    def saved_grids(self):
        yield 'weight', self.weight, self.grid

    def forward(self, x, hw_shape):
        return x + self.resized(self.weight, self.grid, hw_shape)


class PatchMerging(nn.Module):
    """Swin's downsampling: 2x2 neighbourhood concatenation (map padded to even), norm and a linear
    reduction. Tokens (B, N, C) of a ``hw_shape`` map -> tokens and the halved map's shape."""

    def __init__(self, in_channels: int, out_channels: int, *, norm_cfg=dict(type='LN')):
        super().__init__()
        self.norm = build_norm(norm_cfg, 4 * in_channels)
        self.reduction = Linear(4 * in_channels, out_channels, bias=False)

    def forward(self, x, hw_shape):
        x = pad_to_multiple(x.reshape(x.shape[0], *hw_shape, -1), 2, channels_last=True)
        # official order: (even row, even col), (odd, even), (even, odd), (odd, odd)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        hw_shape = tuple(x.shape[1:3])
        return self.reduction(self.norm(x.flatten(1, 2))), hw_shape
