"""Convert an official GroupMixFormer checkpoint (AILab-CVC/GroupMixFormer) into ours.

Usage: python tools/model_converters/groupmixformer2mmpretrain.py SRC DST

SRC is ``{'model': state_dict}`` or a bare state dict. DST loads strictly into the ImageClassifier
built from ``mmpretrain_cfgs/groupmixformer/*_in1k.py`` and, with ``prefix='backbone.'``, into the
detection and segmentation backbones. The rules are in ``groupmix_backbones/converters/``.
"""
from groupmix_backbones.converters import GROUPMIXFORMER

if __name__ == '__main__':
    GROUPMIXFORMER.main()
