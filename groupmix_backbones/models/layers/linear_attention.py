"""FLatten's focused linear attention (Han et al., "FLatten Transformer", ICCV 2023), shared by
the FLatten hosts and the unified family's U-FLatten."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import AttentionWeights, check_heads, map_probe_cells
from .linear import Linear
from .shape import SavedGrids, image_to_tokens, tokens_to_image


class FocusedLinearAttention(SavedGrids, nn.Module):
    """The FLatten module on q, k, v tokens (B, N, C) of one map; hosts add the projections.

    ``phi(x) = ||y|| * y**p / ||y**p||`` with ``y = relu(x) / softplus(s)`` maps q and k; ``phi(k)^T
    v`` comes first (linear in the number of tokens), normalised by ``phi(q) mean(phi(k))``; a
    depthwise convolution of v (``dwc``) restores the rank. A learned key position encoding of
    the pre-training map ``pos_hw`` is interpolated (bicubic) to other maps.

    Args:
        dim (int): Channels of q, k and v.
        num_heads (int): Heads.
        pos_hw (tuple): Grid of the learned key position encoding (the pre-training map).
        focusing_factor (float): Power ``p`` of the focused kernel. Defaults to 3.
        kernel_size (int): Kernel of the depthwise rank-restoring conv ``dwc``. Defaults to 5.
    """

    def __init__(self, dim: int, *, num_heads: int, pos_hw, focusing_factor: float = 3,
                 kernel_size: int = 5):
        super().__init__()
        check_heads(dim, num_heads)
        head_dim = dim // num_heads
        self.num_heads = num_heads
        self.focusing_factor = focusing_factor
        self.pos_hw = tuple(pos_hw)
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2,
                             groups=head_dim)
        self.focus_scale = nn.Parameter(torch.zeros(1, 1, dim))
        self.key_pos_embed = nn.Parameter(torch.zeros(1, self.pos_hw[0] * self.pos_hw[1], dim))
        self.attn_weights = AttentionWeights()  # (B, heads, N, N) while recording, without dwc

    def saved_grids(self):
        yield 'key_pos_embed', self.key_pos_embed, self.pos_hw

    def _focus(self, x, scale):
        x = (F.relu(x) + 1e-6) / scale
        norm = x.norm(dim=-1, keepdim=True)
        x = x ** self.focusing_factor
        return x / x.norm(dim=-1, keepdim=True) * norm

    def attend(self, q, k, v, hw_shape):
        """q, k, v: (B, N, C) tokens of a map of ``hw_shape`` -> (B, N, C), before projection.

        Under autocast the focused kernel and the products after it run in float32 (the result
        too; the next layer casts it back): ``x ** 3`` of a scaled-up ReLU overflows float16
        (65504) once ``softplus(focus_scale)`` has learned to be small, ``phi(k)^T v`` sums N
        products, and ``1 / (phi(q) mean(phi(k)))`` needs float32's range near zero."""
        B, N, C = q.shape
        heads = self.num_heads
        # the rank-restoring conv of each head's v, its weights shared by the heads: one
        # depthwise conv over all channels of the channels_last map view of the tokens (in the
        # autocast dtype: a convolution of v alone cannot overflow)
        conv = self.dwc
        local = image_to_tokens(F.conv2d(tokens_to_image(v, hw_shape), conv.weight.repeat(
            heads, 1, 1, 1), conv.bias.repeat(heads), padding=conv.padding, groups=C))
        with torch.autocast(q.device.type, enabled=False):  # float32 needed, see above
            q, k, v = (t.float() for t in (q, k, v))
            k = k + self.resized(self.key_pos_embed, self.pos_hw, hw_shape).float()
            scale = F.softplus(self.focus_scale.float())
            q, k = self._focus(q, scale), self._focus(k, scale)
            return self._linear_attention(q, k, v, local.float(), hw_shape)

    def _linear_attention(self, q, k, v, local, hw_shape):
        B, N, C = q.shape
        heads = self.num_heads
        q, k, v = (t.reshape(B, N, heads, -1).transpose(1, 2) for t in (q, k, v))
        # (B, heads, d, d) context first, linear in N (scaled before the product, as the official)
        context = (k.transpose(-2, -1) * N ** -0.5) @ (v * N ** -0.5)
        normaliser = 1 / (q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1) + 1e-6)
        if self.attn_weights.recording:  # the N x N weights, only when asked
            self.attn_weights(q @ k.transpose(-2, -1) / N * normaliser,
                              **map_probe_cells(hw_shape, N, device=q.device))
        # local + (q @ context) * normaliser in one pass, in the token layout (B, N, heads, d)
        return torch.addcmul(local.reshape(B, N, heads, -1), (q @ context).transpose(1, 2),
                             normaliser.transpose(1, 2)).reshape(B, N, C)


class ProjectedLinearAttention(FocusedLinearAttention):
    """Focused linear attention of a whole map with its projections: one ``qkv`` linear layer
    (Swin host) or ``q`` and ``kv`` (PVT hosts), and the output projection."""

    def __init__(self, dim, *, fused_qkv: bool, qkv_bias=True, proj_drop=0., **kwargs):
        super().__init__(dim, **kwargs)
        if fused_qkv:
            self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        else:
            self.q = Linear(dim, dim, bias=qkv_bias)
            self.kv = Linear(dim, 2 * dim, bias=qkv_bias)
        self.fused_qkv = fused_qkv
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, hw_shape):
        q, k, v = self.qkv(x).chunk(3, dim=-1) if self.fused_qkv else (self.q(x),
                                                                       *self.kv(x).chunk(2, -1))
        return self.proj_drop(self.proj(self.attend(q, k, v, hw_shape)))
