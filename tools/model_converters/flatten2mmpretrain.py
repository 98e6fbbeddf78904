"""Convert an official FLatten Transformer checkpoint (LeapLabTHU/FLatten-Transformer) into ours.

Usage: python tools/model_converters/flatten2mmpretrain.py SRC DST

SRC is ``{'model': state_dict}`` or a bare state dict of FLatten-PVT, -PVTv2, -Swin or -CSWin (the
host is recognised from the keys). DST loads strictly into an ImageClassifier with
``backbone=dict(type=<FLattenPVT|FLattenPVTv2|FLattenSwin|FLattenCSWin>, arch=..., out_indices=(3,),
final_norm=True)`` (``final_norm=False`` for FLattenPVT, none for FLattenPVTv2), a
``GlobalAveragePooling`` neck and a ``LinearClsHead``; and, with ``prefix='backbone.'``, into the
detection and segmentation backbones. The rules are in ``groupmix_backbones/converters/``.
"""
from groupmix_backbones.converters import FLATTEN

if __name__ == '__main__':
    FLATTEN.main()
