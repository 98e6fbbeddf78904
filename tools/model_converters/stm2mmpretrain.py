"""Convert an official unified token-mixer checkpoint (OpenGVLab/STM-Evaluation) into ours.

Usage: python tools/model_converters/stm2mmpretrain.py SRC DST

SRC is ``{'model': state_dict}`` or a bare state dict of ``unified_<halo|pvt|swin|convnext|dcn_v3>_
<micro|tiny|small|base>`` (mixer and size are recognised from the keys and shapes). DST loads strictly
into the classifier of our ``mmpretrain_cfgs/unified/*_in1k.py`` config and, with
``prefix='backbone.'``, into the detection and segmentation backbones.
"""
from groupmix_backbones.converters import STM

if __name__ == '__main__':
    STM.main()
