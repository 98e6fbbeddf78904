"""Classifier necks our families' official heads need."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from .layers import Fusable, fold_bn


@MODELS.register_module()
class PointwiseConvPoolNeck(Fusable, BaseModule):
    """A 1x1 conv (no bias) widening the channels ``expand_ratio`` times, BatchNorm, GELU, then
    global average pooling: the unified family's classifier neck (the official ``conv_head``).
    Takes the backbone's tuple of maps and pools each, as ``GlobalAveragePooling`` does.

    Args:
        in_channels (int): Channels of the backbone's (last) map.
        expand_ratio (float): Output channels over input channels. Defaults to 1.5.
    """

    def __init__(self, in_channels: int, expand_ratio: float = 1.5,
                 init_cfg=dict(type='TruncNormal', layer='Conv2d', std=.02)):
        super().__init__(init_cfg=init_cfg)
        self.out_channels = int(in_channels * expand_ratio)
        self.conv = nn.Conv2d(in_channels, self.out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(self.out_channels)
        self.act = nn.GELU()

    def fuse_own(self):
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv, self.bn = fold_bn(self.conv, self.bn), nn.Identity()

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The widened map (conv, BN, GELU) before pooling: timm's ``forward_head`` pools it
        itself, with the pooling that ``global_pool`` chooses."""
        return self.act(self.bn(self.conv(x)))

    def forward(self, inputs):
        if torch.is_tensor(inputs):
            inputs = (inputs, )
        return tuple(self.project(x).mean((2, 3)) for x in inputs)
