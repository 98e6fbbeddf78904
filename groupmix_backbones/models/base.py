"""Building blocks shared by every backbone family: arch lookup, stage options, drop-path schedule."""
import math
from typing import Dict, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from timm.layers import trunc_normal_
from torch.nn.modules.batchnorm import _BatchNorm


def resolve_arch(family: str, arch_zoo: Dict[str, dict], arch: Union[str, dict],
                 required_keys: Sequence[str]) -> dict:
    """Return the settings of ``arch``: a name from ``arch_zoo`` or a dict with ``required_keys``."""
    if isinstance(arch, str):
        if arch.lower() not in arch_zoo:
            raise KeyError(f'Unknown {family} arch {arch!r}. Valid names: {", ".join(arch_zoo)}; '
                           f'or pass a dict with keys {list(required_keys)}.')
        return dict(arch_zoo[arch.lower()])
    if not isinstance(arch, dict):
        raise TypeError(f'{family} arch must be a name or a dict, got {type(arch).__name__}.')
    missing = set(required_keys) - set(arch)
    if missing:
        raise KeyError(f'Custom {family} arch misses keys {sorted(missing)}; '
                       f'required keys are {list(required_keys)}.')
    return dict(arch)


def drop_path_schedule(drop_path_rate: float, depths: Sequence[int]):
    """Per-stage lists of drop-path rates rising linearly from 0 to ``drop_path_rate`` over all blocks."""
    rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
    out, start = [], 0
    for depth in depths:
        out.append(rates[start:start + depth])
        start += depth
    return out


def image_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_image(x: torch.Tensor, hw_shape) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw_shape)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def pad_to_multiple(x: torch.Tensor, multiple, channels_last: bool = False) -> torch.Tensor:
    """Zero-pad the bottom/right of an image, (B, C, H, W) or with ``channels_last`` (B, H, W, C),
    so that H and W are multiples of ``multiple`` (an int or an (h, w) pair)."""
    mh, mw = _pair(multiple)
    H, W = x.shape[1:3] if channels_last else x.shape[2:4]
    pad_h, pad_w = -H % mh, -W % mw
    if not pad_h and not pad_w:
        return x
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h) if channels_last else (0, pad_w, 0, pad_h))


def pad_for_strided_conv(x: torch.Tensor, kernel_size, stride, padding) -> torch.Tensor:
    """Zero-pad the bottom/right of (B, C, H, W) so that a conv with these settings outputs
    ``ceil(H / stride) x ceil(W / stride)`` (what a stride-s stem should give for any size)."""
    extra = []
    for size, k, s, p in zip(x.shape[2:4], _pair(kernel_size), _pair(stride), _pair(padding)):
        extra.append(max(0, s * (-(-size // s) - 1) + k - 2 * p - size))
    return F.pad(x, (0, extra[1], 0, extra[0])) if any(extra) else x


def resize_pos_embed(pos_embed: torch.Tensor, src_hw, dst_hw, mode: str = 'bicubic') -> torch.Tensor:
    """Interpolate position embedding tokens (1, src_h*src_w, C) of a src_hw grid to dst_hw; returned
    unchanged when the grids are equal."""
    src_hw, dst_hw = tuple(src_hw), tuple(dst_hw)
    if src_hw == dst_hw:
        return pos_embed
    grid = pos_embed.reshape(1, *src_hw, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_hw, mode=mode, align_corners=False)
    return grid.flatten(2).transpose(1, 2)


def adapt_saved_grid(state_dict: dict, key: str, param: torch.Tensor, dst_hw) -> None:
    """Interpolate, in ``state_dict``, a saved square grid of tokens (a position embedding
    (1, h*w, C) or a relative position table (h*w, heads)) that was trained for another size to
    ``param``'s grid ``dst_hw``, so that e.g. 224 checkpoints load into 384 models."""
    saved = state_dict.get(key)
    if saved is None or saved.shape == param.shape or saved.dim() not in (2, 3):
        return
    tokens = saved if saved.dim() == 3 else saved[None]
    side = math.isqrt(tokens.shape[1])
    if side * side != tokens.shape[1] or tokens.shape[2] != param.shape[-1]:
        return  # not a square grid of the same channels: left to the shape check
    resized = resize_pos_embed(tokens, (side, side), dst_hw)
    state_dict[key] = resized if saved.dim() == 3 else resized[0]


def window_partition(x: torch.Tensor, window_hw) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of the window -> (B * num_windows, wh * ww, C), windows in
    row-major order."""
    B, H, W, C = x.shape
    wh, ww = _pair(window_hw)
    x = x.reshape(B, H // wh, wh, W // ww, ww, C).transpose(2, 3)
    return x.reshape(-1, wh * ww, C)


def window_reverse(windows: torch.Tensor, window_hw, hw_shape) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * num_windows, wh * ww, C) -> (B, H, W, C)."""
    (wh, ww), (H, W) = _pair(window_hw), tuple(hw_shape)
    C = windows.shape[-1]
    x = windows.reshape(-1, H // wh, W // ww, wh, ww, C).transpose(2, 3)
    return x.reshape(-1, H, W, C)


class DenseBackbone(BaseModule):
    """Base of our hierarchical backbones: checks ``out_indices``, freezes stages, keeps norms in eval.

    Subclasses list their layers in ``frozen_groups()``: the stem first, then one entry per stage;
    ``frozen_stages=k`` freezes the stem and stages ``1..k`` (-1: nothing), as in mmdet's ResNet.
    """

    def __init__(self, num_stages: int, out_indices=(0, 1, 2, 3), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise TypeError(f'{name} out_indices must be a non-empty sequence of ints, got {out_indices!r}.')
        normalized = []
        for index in out_indices:
            if not isinstance(index, int) or not -num_stages <= index < num_stages:
                raise ValueError(f'{name} out_indices {tuple(out_indices)} invalid: each must be an int '
                                 f'in [{-num_stages}, {num_stages - 1}] ({num_stages} stages).')
            normalized.append(index % num_stages)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name} frozen_stages must be in [-1, {num_stages}], got {frozen_stages}.')
        self.num_stages = num_stages
        self.out_indices = tuple(sorted(set(normalized)))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

    def frozen_groups(self) -> Sequence[nn.Module]:
        """Stem followed by one module (or list of modules) per stage."""
        raise NotImplementedError

    def _freeze_stages(self):
        for group in list(self.frozen_groups())[:self.frozen_stages + 1]:
            for module in group if isinstance(group, (list, tuple)) else [group]:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def run_block(self, block: nn.Module, *args):
        """Call ``block``, through activation checkpointing when ``with_cp`` and training."""
        if self.with_cp and self.training and any(
                torch.is_tensor(a) and a.requires_grad for a in args):
            return cp.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def init_weights(self):
        """Pretrained ``init_cfg`` loads weights; otherwise the family's own initialisation."""
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            super().init_weights()
        else:
            self.apply(self._init_module)
            self._is_init = True

    @staticmethod
    def _init_module(module: nn.Module):
        """Default initialisation: truncated normal for linear layers, unit LayerNorm."""
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
