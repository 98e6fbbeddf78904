"""Convert an official unified token-mixer Mask R-CNN 1x checkpoint (OpenGVLab/STM-Evaluation's
detection, mmdet 2.x) into ours.

Usage: python tools/model_converters/stm_det2mmdet.py SRC DST

SRC is a ``mask_rcnn_unified_<halonet|pvt|swin|convnext|internimage>_<size>_1x.pth`` of the
release (mixer and size are recognised from the keys and shapes). DST loads strictly into our
``mmdet_cfgs/unified/mask-rcnn_unified-<mixer>-<size>_fpn_1x_coco.py``. Loading SRC directly
(``load_from``, ``tools/test.py``, the inferencers) converts it the same way in memory.
"""
from groupmix_backbones.converters import STM_DETECTION

if __name__ == '__main__':
    STM_DETECTION.main()
