"""Token MLPs."""
import torch.nn as nn

from .shape import exporting, image_to_tokens, tokens_to_image
from .linear import Linear


class Mlp(nn.Module):
    """fc1, activation, dropout, fc2, dropout on tokens (B, N, C); with ``dwconv`` (PVTv2) a 3x3
    depthwise conv on the ``hw_shape`` map follows fc1 (:meth:`mix`)."""

    def __init__(self, dim: int, hidden_dim: int, *, drop: float = 0., dwconv: bool = False,
                 act_layer=nn.GELU):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1,
                                groups=hidden_dim) if dwconv else None
        self.act = act_layer()
        self.fc2 = Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def mix(self, x):
        """What follows fc1 on its map (B, hidden, H, W), before the activation."""
        return self.dwconv(x)

    def forward(self, x, hw_shape=None):
        if self.dwconv is None:
            return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
        if exporting():
            return self.forward_as_image(x, hw_shape)
        x = image_to_tokens(self.mix(tokens_to_image(self.fc1(x), hw_shape)))
        return self.drop(self.fc2(self.drop(self.act(x))))

    def forward_as_image(self, x, hw_shape):
        """The same on the map (B, C, H, W), fc1 and fc2 as 1x1 convolutions (``Linear.on_map``):
        the exported graph then transposes the C-channel input and output, not the hidden map
        twice (ONNX's Conv takes channels first; in eager mode the depthwise conv reads the
        tokens' channels-last view as they are). Compiled too: FLatten-PVTv2-b0 with inductor
        runs at 1.11x eager so, 0.84x on the tokens with F.linear (docs/deployment.md)."""
        x = self.fc1.on_map(tokens_to_image(x, hw_shape))
        x = self.fc2.on_map(self.drop(self.act(self.mix(x))))
        return self.drop(image_to_tokens(x))
