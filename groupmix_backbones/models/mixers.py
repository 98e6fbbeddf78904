"""The spatial token mixers of :data:`~groupmix_backbones.registry.MIXERS`, which
:class:`~.unified.UnifiedBackbone` builds its blocks around: the unified family's five,
GroupMixFormer's group-mix attention and FLatten's focused linear attention. A mixer is built as
``Mixer(dim, **settings)`` and called as ``mixer(tokens, hw_shape)`` on tokens (B, H*W, C) of a
map of ``hw_shape`` (H, W), row-major (``tokens.reshape(B, H, W, C)`` is the map), returning
tokens of the same shape; register your own with ``@MIXERS.register_module()`` (docs/mixers.md).
"""
import torch.nn as nn

from ..registry import MIXERS
from .layers import (DCNv3, GroupMixAttention, HaloAttention, Linear, ProjectedLinearAttention,
                     ShiftedWindowAttention, SpatialReductionAttention, image_to_tokens,
                     tokens_to_image)

for _mixer in (HaloAttention, SpatialReductionAttention, ShiftedWindowAttention, DCNv3,
               GroupMixAttention):
    MIXERS.register_module(module=_mixer)


@MIXERS.register_module()
class DepthwiseConvMixer(nn.Module):
    """U-ConvNeXt's token mixer: a pointwise projection, a ``kernel_size`` depthwise conv and a
    pointwise projection, on tokens (B, N, C) of a ``hw_shape`` map."""

    def __init__(self, dim: int, *, kernel_size: int = 7):
        super().__init__()
        self.in_proj = Linear(dim, dim)
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.out_proj = Linear(dim, dim)

    def forward(self, x, hw_shape):
        return self.out_proj(image_to_tokens(self.dwconv(tokens_to_image(self.in_proj(x),
                                                                         hw_shape))))


@MIXERS.register_module()
class FocusedLinearMixer(ProjectedLinearAttention):
    """FLatten's focused linear attention over the whole map with one qkv projection (the blocks
    of FLatten-Swin's linear stages): linear in the number of tokens.

    Args:
        dim (int): Channels.
        num_heads (int): Heads.
        pos_hw (tuple): Grid of the learned key position encoding: the stage's map at the
            pre-training size (other maps interpolate it; checkpoints of other grids load resized).
        **kwargs: ``focusing_factor`` (3), ``kernel_size`` (5), ``qkv_bias``, ``proj_drop``.
    """

    def __init__(self, dim: int, *, num_heads: int, pos_hw, **kwargs):
        super().__init__(dim, fused_qkv=True, num_heads=num_heads, pos_hw=pos_hw, **kwargs)
