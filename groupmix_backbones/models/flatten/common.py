"""What the FLatten hosts share: focused linear attention and the host base class."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_

from ..base import DenseBackbone
from ..layers import SavedGrids, check_heads, resize_pos_embed


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

    def saved_grids(self):
        yield 'key_pos_embed', self.key_pos_embed, self.pos_hw

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


class FLattenBackbone(DenseBackbone):
    """Base of the FLatten hosts: attention types per stage (``L`` focused linear, ``S`` the host's
    softmax attention), and ``grids``, each stage's map at the pre-training size (the size the
    learned position encodings are laid out for).

    Args:
        default_attn_types (str): The host's released attention types (linear everywhere if None).
        pretrain_img_size (int, optional): Defaults to the arch's (224); at least 32.
        norm_cfg (dict): Norm of the tokens (LayerNorm; each place keeps its official eps unless
            ``norm_cfg`` sets one).
        Other arguments: see :class:`DenseBackbone`.
    """

    def __init__(self, *, arch, default_attn_types=None, pretrain_img_size=None,
                 norm_cfg=dict(type='LN'), **kwargs):
        super().__init__(arch=arch, **kwargs)
        name, settings, n = type(self).__name__, self.arch_settings, self.num_stages
        attn_types = settings.get('attn_types', default_attn_types or 'L' * n)
        if not isinstance(attn_types, str) or len(attn_types) != n or set(attn_types) - set('LS'):
            raise ValueError(f'{name} attn_types must give L (focused linear) or S (softmax) for '
                             f'each of the {n} stages, got {attn_types!r}.')
        size = pretrain_img_size or settings.get('pretrain_img_size', 224)
        if not isinstance(size, int) or size < 2 ** (n + 1):
            raise ValueError(f'{name} pretrain_img_size must be an int of at least {2 ** (n + 1)} '
                             f'(one token in the last stage), got {size!r}.')
        self.attn_types = attn_types
        self.grids = [(size // 2 ** (i + 2), ) * 2 for i in range(n)]
        self.norm_cfg = dict(norm_cfg)

    def init_module(self, module):
        super().init_module(module)
        for name in ('pos_embed', 'rel_pos_table'):
            param = module._parameters.get(name)
            if param is not None:
                trunc_normal_(param, std=.02)
