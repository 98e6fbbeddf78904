# The unified token-mixer family's ImageNet-1k recipe (OpenGVLab/STM-Evaluation: classification/
# main.py defaults with shell/1k_pretrain/transformer.sh, which the release trains every mixer
# with): 300 epochs on 8 GPUs x 128, AdamW lr 1e-3, weight decay 0.05 (none on norms, biases, layer
# scales and relative position bias tables), 20 warmup epochs from 1e-6, cosine to 1e-5, gradient
# clipping 5, RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25, label smoothing 0.1: Swin's
# recipe (in1k_swin-recipe.py), plus EMA of the weights (decay 0.9999) and the family's classifier
# neck (1x1 conv to 1.5x the channels, BatchNorm, GELU, pooling). Leaves set the backbone (type,
# arch, drop path of the official model) and the neck's and head's widths.
_base_ = './in1k_swin-recipe.py'
model = dict(backbone=dict(out_indices=(3, )),
             neck=dict(_delete_=True, type='PointwiseConvPoolNeck', expand_ratio=1.5))
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]
