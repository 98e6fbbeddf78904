"""A spatial token mixer of your own: PoolFormer's pooling ("MetaFormer Is Actually What You Need
for Vision", Yu et al., CVPR 2022) for the unified architecture (docs/mixers.md)."""
import torch.nn as nn

from groupmix_backbones import MIXERS


@MIXERS.register_module()
class PoolMixer(nn.Module):
    """Average pooling minus the identity, on tokens (B, H*W, C) of a map of ``hw_shape``."""

    def __init__(self, dim: int, *, pool_size: int = 3):
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2,
                                 count_include_pad=False)

    def forward(self, tokens, hw_shape):
        B, N, C = tokens.shape
        x = tokens.transpose(1, 2).reshape(B, C, *hw_shape)  # tokens are the map, row-major
        return (self.pool(x) - x).flatten(2).transpose(1, 2)
