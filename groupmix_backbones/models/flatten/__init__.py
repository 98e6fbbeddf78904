"""FLatten Transformer: Focused Linear Attention (Han et al., "FLatten Transformer: Vision Transformer
using Focused Linear Attention", ICCV 2023) inside four hosts, as backbones for classification,
detection and segmentation (released settings as in LeapLabTHU/FLatten-Transformer).

* :class:`FLattenPVT` / :class:`FLattenPVTv2` (:mod:`.pvt`): linear attention in all four stages, on
  the whole map (no spatial reduction, the released ``la_sr_ratios=1111``).
* :class:`FLattenSwin` (:mod:`.swin`): linear attention in stages 1-2, global on the map (the
  released 56 / 96 windows equal the stage-1 map at 224 / 384); shifted-window softmax attention
  (7x7, 12x12 at 384) with relative position bias in stages 3-4.
* :class:`FLattenCSWin` (:mod:`.cswin`): linear attention on the whole map in stages 1-2 (the
  released split sizes 56-28 / 96-48 equal the map); cross-shaped stripe softmax attention with
  LePE in stage 3 (split 7, 12 at 384) and whole-map softmax attention in stage 4.

The focused linear attention itself is in :mod:`.common`.
"""
from .cswin import FLattenCSWin
from .pvt import FLattenPVT, FLattenPVTv2
from .swin import FLattenSwin

__all__ = ['FLattenPVT', 'FLattenPVTv2', 'FLattenSwin', 'FLattenCSWin']
