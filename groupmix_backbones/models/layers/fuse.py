"""Inference-time fusion: batch norms folded into the convolutions before them. Exact up to float
rounding; for eval-mode models only. (Merging GroupMixFormer's parallel 3/5/7 depthwise convs into
one zero-padded 7x7 conv was measured and dropped: slower in its channels-first layout.)"""
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class Fusable:
    """Mixin of modules with layers to fold for inference: :meth:`fuse_own` folds the module's own
    layers (not those of the Fusable modules below it), in place and idempotently;
    :func:`fuse_modules` calls it on every Fusable module of a model."""

    def fuse_own(self) -> None:
        raise NotImplementedError


def _laid_out_like(new: nn.Conv2d, old: nn.Conv2d) -> nn.Conv2d:
    """``new`` on ``old``'s device and dtype, channels_last where ``old``'s weight is."""
    new.to(old.weight.device, old.weight.dtype)
    if old.weight.is_contiguous(memory_format=torch.channels_last):
        new.to(memory_format=torch.channels_last)
    return new


@torch.no_grad()
def fold_bn(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """A conv (with bias) computing ``bn(conv(x))`` with ``bn``'s running statistics."""
    scale = (bn.running_var + bn.eps).rsqrt()
    shift = torch.zeros_like(scale)
    if bn.affine:
        scale, shift = scale * bn.weight, bn.bias
    fused = _laid_out_like(nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                     conv.stride, conv.padding, conv.dilation, conv.groups,
                                     bias=True, padding_mode=conv.padding_mode), conv)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    fused.bias.copy_((bias - bn.running_mean) * scale + shift)
    return fused


def fuse_modules(model: nn.Module) -> nn.Module:
    """Put ``model`` (a backbone or a whole task model) in eval mode and fuse every
    :class:`Fusable` module of it (``model`` included), in place; returns ``model``."""
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, Fusable):
            module.fuse_own()
    return model
