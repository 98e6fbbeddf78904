"""Token MLPs."""
import torch.nn as nn

from .shape import image_to_tokens, tokens_to_image
from .linear import Linear


class Mlp(nn.Module):
    """fc1, activation, dropout, fc2, dropout on tokens (B, N, C); with ``dwconv`` (PVTv2) a 3x3
    depthwise conv on the ``hw_shape`` map follows fc1."""

    def __init__(self, dim: int, hidden_dim: int, *, drop: float = 0., dwconv: bool = False,
                 act_layer=nn.GELU):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1,
                                groups=hidden_dim) if dwconv else None
        self.act = act_layer()
        self.fc2 = Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x, hw_shape=None):
        x = self.fc1(x)
        if self.dwconv is not None:
            x = image_to_tokens(self.dwconv(tokens_to_image(x, hw_shape)))
        return self.drop(self.fc2(self.drop(self.act(x))))
