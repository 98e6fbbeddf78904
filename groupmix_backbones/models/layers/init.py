"""Weight initialisations that more than one official implementation uses."""
import torch.nn as nn


def fan_out_normal_(conv: nn.Conv2d):
    """He-normal over the conv's fan-out per group and a zero bias (PVTv2's and SG-Former's conv
    initialisation)."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0, (2.0 / fan_out) ** 0.5)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
