"""Convert an official SG-Former checkpoint (OliverRensu/SG-Former) into ours.

Usage: python tools/model_converters/sgformer2mmpretrain.py SRC DST

SRC is a checkpoint of the official training (``{'state_dict': ...}``; its ``state_dict_ema`` is
not read: save that alone to convert the EMA weights), ``{'model': state_dict}`` or a bare state
dict of SG-Former-S, -M or -B. DST loads strictly into an ImageClassifier with
``backbone=dict(type='SGFormer', arch=..., out_indices=(3,))``, a ``GlobalAveragePooling`` neck and
a ``LinearClsHead``; and, with ``prefix='backbone.'``, into the detection and segmentation
backbones. The rules are in ``groupmix_backbones/converters/sgformer.py``.
"""
from groupmix_backbones.converters import SGFORMER

if __name__ == '__main__':
    SGFORMER.main()
