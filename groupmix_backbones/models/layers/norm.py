"""Norm layers from OpenMMLab norm configs."""
import torch.nn as nn
from mmcv.cnn import build_norm_layer


def build_norm(norm_cfg: dict, channels: int, *, eps: float = None) -> nn.Module:
    """mmcv's ``build_norm_layer(norm_cfg, channels)`` layer; ``eps`` is the default of the place
    that builds it (the official value there), used unless ``norm_cfg`` sets its own."""
    cfg = dict(norm_cfg)
    if eps is not None:
        cfg.setdefault('eps', eps)
    return build_norm_layer(cfg, channels)[1]
