"""The pre-norm transformer block that most hosts share."""
import torch
import torch.nn as nn

from .drop import drop_path
from .mlp import Mlp
from .norm import build_norm


class PreNormBlock(nn.Module):
    """``x + drop_path(attn(norm1(x)))`` then ``x + drop_path(mlp(norm2(x)))`` on tokens (B, N, C)
    of a ``hw_shape`` map; ``attn`` is any module called as ``attn(tokens, hw_shape)``. With layer
    scale, learned per-channel ``gamma1`` and ``gamma2`` scale the two branches.

    Args:
        dim (int): Channels.
        attn (nn.Module): The token mixer.
        mlp_ratio (float): Hidden channels of the MLP over ``dim``.
        conv_mlp (bool): A depthwise conv inside the MLP (PVTv2). Defaults to False.
        drop_rate (float): Dropout inside the MLP. Defaults to 0.
        drop_path_rate (float): Stochastic depth of both residuals. Defaults to 0.
        norm_cfg (dict): Norm of the two pre-norms. Defaults to LayerNorm.
        norm_eps (float, optional): The official eps of the two norms, unless ``norm_cfg`` sets one.
        layer_scale_init_value (float): Initial value of the layer scales; 0 (default): none.
    """

    def __init__(self, dim: int, *, attn: nn.Module, mlp_ratio: float, conv_mlp: bool = False,
                 drop_rate: float = 0., drop_path_rate: float = 0., norm_cfg=dict(type='LN'),
                 norm_eps: float = None, layer_scale_init_value: float = 0.):
        super().__init__()
        self.norm1 = build_norm(norm_cfg, dim, eps=norm_eps)
        self.attn = attn
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = build_norm(norm_cfg, dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate, dwconv=conv_mlp)
        if layer_scale_init_value > 0:
            self.gamma1 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
            self.gamma2 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
        else:
            self.gamma1 = self.gamma2 = None

    def forward(self, x, hw_shape):
        x = x + self.drop_path(self.scale(self.gamma1, self.attn(self.norm1(x), hw_shape)))
        return x + self.drop_path(self.scale(self.gamma2, self.mlp(self.norm2(x), hw_shape)))

    @staticmethod
    def scale(gamma, x):
        return x if gamma is None else gamma * x
