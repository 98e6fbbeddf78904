"""Official unified token-mixer checkpoints (OpenGVLab/STM-Evaluation, ``unified_<mixer>_<size>``)
-> ours. The mixer is recognised from the first block's keys, the size from the depths and widths.

Layouts that differ: the official layer scales are (1, C, 1, 1) or (1, 1, 1, C) in some blocks (ours
(C,)), U-ConvNeXt's pointwise projections (and U-HaloNet's key/value projection) are 1x1 convs
(ours linear layers), U-PVT's position embeddings are maps (1, C, H, W) (ours tokens (1, H*W, C)).
Dropped: Swin's ``relative_position_index`` and ``attn_mask`` buffers (rebuilt for every map size).

The official Mask R-CNN 1x detectors (mmdet 2.x, :data:`DETECTION_RESULTS`) convert too
(:data:`STM_DETECTION`): their backbone keys through the same tables, its ``out_norm_<i>`` to our
``output_norms`` (the backbone of our 1x configs, ``stage_norms=False, norm_outputs=True``), and the
FPN, RPN head and RoI heads as they are (mmdet 3.x kept those names and layouts).
"""
import re
from functools import partial

from ..registry import BACKBONES
from .core import ConversionError, OfficialFormat, Rules, register_format

WB = r'(weight|bias)'
BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

# keys inside one official block -> ours (a PreNormBlock whose ``attn`` is the mixer)
_COMMON = ((rf'(norm1|norm2)\.{WB}', r'\1.\2'), (rf'mlp\.(fc1|fc2)\.{WB}', r'mlp.\1.\2'),
           (r'gamma_?([12])', r'gamma\1'))
BLOCK = {
    'UnifiedPVT': Rules(*_COMMON, (rf'attn\.(q|kv|proj|sr|norm)\.{WB}', r'attn.\1.\2')),
    'UnifiedSwin': Rules(
        *_COMMON, (rf'attn\.(qkv|proj)\.{WB}', r'attn.\1.\2'),
        (r'attn\.relative_position_bias_table', 'attn.rel_pos_table'),
        (r'attn\.relative_position_index|attn_mask', None)),
    'UnifiedConvNeXt': Rules(
        *_COMMON, (rf'dw_norm\.{WB}', r'norm1.\1'), (rf'pw_norm\.{WB}', r'norm2.\1'),
        (rf'dw_input_proj\.{WB}', r'attn.in_proj.\1'), (rf'dwconv\.{WB}', r'attn.dwconv.\1'),
        (rf'dw_out_proj\.{WB}', r'attn.out_proj.\1'),
        (rf'pwconv([12])\.{WB}', r'mlp.fc\1.\2')),
    'UnifiedHaloNet': Rules(
        *_COMMON, (rf'attn\.(q|kv|proj)\.{WB}', r'attn.\1.\2'),
        (r'attn\.pos_embed\.(height_rel|width_rel)', r'attn.\1')),
    'UnifiedInternImage': Rules(
        *_COMMON, (rf'attn\.dw_conv\.0\.{WB}', r'attn.dw_conv.\1'),
        (rf'attn\.dw_conv\.1\.norm\.{WB}', r'attn.dw_norm.\1'),
        (rf'attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.{WB}',
         r'attn.\1.\2')),
}

# first-block keys that tell the mixers apart
MIXER_KEYS = (('UnifiedHaloNet', 'attn.pos_embed.height_rel'), ('UnifiedPVT', 'pos_embed'),
              ('UnifiedSwin', 'attn.relative_position_bias_table'),
              ('UnifiedConvNeXt', 'dw_input_proj.weight'),
              ('UnifiedInternImage', 'attn.sampling_offsets.weight'))


def _block(backbone, stage, index, rest):
    if backbone == 'UnifiedPVT' and index == '0' and rest == 'pos_embed':
        return f'backbone.stages.{stage}.pos_embed.weight'
    new = BLOCK[backbone](rest)
    return None if new is None else f'backbone.stages.{stage}.blocks.{index}.{new}'


def _rules(backbone):
    return Rules(
        (rf'downsample_layers\.0\.stem\.0\.{WB}', r'backbone.patch_embed.conv1.proj.\1'),
        (rf'downsample_layers\.0\.stem\.1\.{WB}', r'backbone.patch_embed.conv1.norm.\1'),
        (rf'downsample_layers\.0\.stem\.3\.{WB}', r'backbone.patch_embed.conv2.proj.\1'),
        (rf'downsample_layers\.0\.stem\.4\.{WB}', r'backbone.patch_embed.conv2.norm.\1'),
        (r'downsample_layers\.(\d)\.reduction\.0\.weight', r'backbone.stages.\1.downsample.proj.weight'),
        (rf'downsample_layers\.(\d)\.reduction\.1\.{WB}', r'backbone.stages.\1.downsample.norm.\2'),
        (r'stages\.(\d)\.(\d+)\.(.+)', lambda m: _block(backbone, m[1], m[2], m[3])),
        (rf'stage_norms\.(\d)\.{WB}', r'backbone.stages.\1.norm.\2'),
        (r'conv_head\.0\.weight', 'neck.conv.weight'),
        (rf'conv_head\.1\.{BN}', r'neck.bn.\1'),
        (rf'head\.{WB}', r'head.fc.\1'),
    )


def _mixer(state, prefix=''):
    for backbone, key in MIXER_KEYS:
        if f'{prefix}stages.0.0.{key}' in state:
            return backbone
    return None


def detect(state):
    """Which unified mixer an official classifier's state dict belongs to (None: not the unified
    family)."""
    if 'downsample_layers.0.stem.0.weight' not in state or 'stage_norms.0.weight' not in state:
        return None
    return _mixer(state)


def detect_detector(state):
    """Which unified mixer the backbone of an official Mask R-CNN's state dict has (None: not
    one)."""
    if 'backbone.downsample_layers.0.stem.0.weight' not in state \
            or 'rpn_head.rpn_conv.weight' not in state:
        return None
    return _mixer(state, 'backbone.')


def arch_of(state, backbone, prefix=''):
    """The size (``micro`` ... ``base``) whose depths and widths (of the stem and downsampling
    layers) the official state dict has; its backbone keys start with ``prefix``."""
    blocks = {}
    for key in state:
        match = re.match(rf'{re.escape(prefix)}stages\.(\d)\.(\d+)\.', key)
        if match:
            stage, index = int(match[1]), int(match[2])
            blocks[stage] = max(blocks.get(stage, 0), index + 1)
    depths = [blocks[s] for s in sorted(blocks)]
    norms = [f'{prefix}downsample_layers.0.stem.4.weight'] + [
        f'{prefix}downsample_layers.{s}.reduction.1.weight' for s in sorted(blocks) if s]
    widths = [int(state[key].shape[0]) for key in norms if key in state]
    cls = next(c for c in BACKBONES if c.__name__ == backbone)
    for name, settings in cls.arch_zoo.items():
        if list(settings['depths']) == depths and list(settings['embed_dims']) == widths:
            return name
    known = '; '.join(f'{name}: depths {s["depths"]}, widths {s["embed_dims"]}'
                      for name, s in cls.arch_zoo.items())
    raise ConversionError(f'An official {backbone} checkpoint with depths {depths} and widths '
                          f'{widths} matches none of our sizes ({known}); it was not converted.')


def adapt(key, value):
    """Official tensor -> the layout of ours (see the module docstring)."""
    if re.search(r'\.gamma[12]$', key):
        return value.flatten()
    if re.search(r'\.attn\.(in_proj|out_proj|kv)\.weight$', key) and value.dim() == 4:
        return value.flatten(1)
    if key.endswith('.pos_embed.weight') and value.dim() == 4:
        return value.flatten(2).transpose(1, 2)
    return value


STM = register_format(OfficialFormat(
    family='unified token-mixer (STM-Evaluation)', repo='OpenGVLab/STM-Evaluation',
    script='tools/model_converters/stm2mmpretrain.py', detect=detect,
    rules={backbone: _rules(backbone) for backbone in BLOCK},
    expected='downsample_layers.0.stem.*, stage_norms.* and stages.0.0.* with one of '
    + ', '.join(f'{key} ({backbone})' for backbone, key in MIXER_KEYS),
    arch_of=arch_of, adapt=adapt))


# mmdet 2.x Mask R-CNN (FPN, RPN head, Shared2FC box head, FCN mask head) -> mmdet 3.x: the same
# names and layouts; the table refuses anything else.
MMDET_MASK_RCNN = Rules(
    (rf'neck\.(lateral_convs|fpn_convs)\.(\d)\.conv\.{WB}', r'neck.\1.\2.conv.\3'),
    (rf'rpn_head\.(rpn_conv|rpn_cls|rpn_reg)\.{WB}', r'rpn_head.\1.\2'),
    (rf'roi_head\.bbox_head\.(fc_cls|fc_reg|shared_fcs\.\d)\.{WB}', r'roi_head.bbox_head.\1.\2'),
    (rf'roi_head\.mask_head\.(convs\.\d\.conv|upsample|conv_logits)\.{WB}',
     r'roi_head.mask_head.\1.\2'),
)


def _detector_rules(backbone):
    classifier = _rules(backbone)

    def backbone_key(match):
        new = classifier(match[1])
        if new is not None and not new.startswith('backbone.'):  # a classifier's head
            raise ConversionError(match[0])
        return new

    return Rules((rf'backbone\.out_norm_(\d)\.{WB}', r'backbone.output_norms.\1.\2'),
                 (r'backbone\.(.+)', backbone_key),
                 (r'(neck|rpn_head|roi_head)\..+', lambda match: MMDET_MASK_RCNN(match[0])))


STM_DETECTION = register_format(OfficialFormat(
    family='unified token-mixer Mask R-CNN 1x (STM-Evaluation detection, mmdet 2.x)',
    repo='OpenGVLab/STM-Evaluation', script='tools/model_converters/stm_det2mmdet.py',
    detect=detect_detector, rules={backbone: _detector_rules(backbone) for backbone in BLOCK},
    expected='backbone.downsample_layers.0.stem.*, rpn_head.rpn_conv.weight and '
    'backbone.stages.0.0.* with one of '
    + ', '.join(f'{key} ({backbone})' for backbone, key in MIXER_KEYS),
    arch_of=partial(arch_of, prefix='backbone.'), adapt=adapt,
    target='the detector of our '
    'mmdet_cfgs/unified/mask-rcnn_unified-<mixer>-<size>_fpn_1x_coco.py'))

# The published Mask R-CNN 1x detectors (COCO val2017 box and mask AP), from STM-Evaluation's
# detection/readme.md: (our backbone type, arch) -> (box AP, mask AP, checkpoint URL).
DETECTION_RELEASE = 'https://github.com/OpenGVLab/STM-Evaluation/releases/download/det-ckpt/'
_DETECTION_NAMES = dict(UnifiedHaloNet='halonet', UnifiedPVT='pvt', UnifiedSwin='swin',
                        UnifiedConvNeXt='convnext', UnifiedInternImage='internimage')
_DETECTION_AP = dict(
    micro=dict(UnifiedHaloNet=(40.3, 37.3), UnifiedPVT=(35.9, 34.2), UnifiedSwin=(36.6, 34.6),
               UnifiedConvNeXt=(39.2, 36.4), UnifiedInternImage=(39.5, 36.6)),
    tiny=dict(UnifiedHaloNet=(46.9, 42.4), UnifiedPVT=(44.2, 40.6), UnifiedSwin=(44.3, 40.5),
              UnifiedConvNeXt=(44.3, 40.5), UnifiedInternImage=(47.2, 42.5)),
    small=dict(UnifiedHaloNet=(48.2, 43.3), UnifiedPVT=(46.1, 41.9), UnifiedSwin=(46.4, 42.1),
               UnifiedConvNeXt=(45.6, 41.2), UnifiedInternImage=(47.8, 43.0)),
    base=dict(UnifiedHaloNet=(49.0, 43.8), UnifiedPVT=(46.4, 42.3), UnifiedSwin=(47.0, 42.2),
              UnifiedConvNeXt=(46.7, 42.2), UnifiedInternImage=(48.7, 43.8)))
DETECTION_RESULTS = {
    (backbone, arch): (box, mask, f'{DETECTION_RELEASE}mask_rcnn_unified_'
                                  f'{_DETECTION_NAMES[backbone]}_{arch}_1x.pth')
    for arch, by_backbone in _DETECTION_AP.items()
    for backbone, (box, mask) in by_backbone.items()}
