"""Official unified token-mixer checkpoints (OpenGVLab/STM-Evaluation, ``unified_<mixer>_<size>``)
-> ours. The mixer is recognised from the first block's keys, the size from the depths and widths.

Layouts that differ: the official layer scales are (1, C, 1, 1) or (1, 1, 1, C) in some blocks (ours
(C,)), U-ConvNeXt's pointwise projections (and U-HaloNet's key/value projection) are 1x1 convs
(ours linear layers), U-PVT's position embeddings are maps (1, C, H, W) (ours tokens (1, H*W, C)).
Dropped: Swin's ``relative_position_index`` and ``attn_mask`` buffers (rebuilt for every map size).
"""
import re

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


def detect(state):
    """Which unified mixer an official state dict belongs to (None: not the unified family)."""
    if 'downsample_layers.0.stem.0.weight' not in state or 'stage_norms.0.weight' not in state:
        return None
    for backbone, key in MIXER_KEYS:
        if f'stages.0.0.{key}' in state:
            return backbone
    return None


def arch_of(state, backbone):
    """The size (``micro`` ... ``base``) whose depths and widths the official state dict has."""
    blocks = {}
    for key in state:
        match = re.match(r'stages\.(\d)\.(\d+)\.', key)
        if match:
            stage, index = int(match[1]), int(match[2])
            blocks[stage] = max(blocks.get(stage, 0), index + 1)
    depths = [blocks[s] for s in sorted(blocks)]
    widths = [int(state[f'stage_norms.{s}.weight'].shape[0]) for s in sorted(blocks)
              if f'stage_norms.{s}.weight' in state]
    cls = next(c for c in BACKBONES if c.__name__ == backbone)
    for name, settings in cls.arch_zoo.items():
        if list(settings['depths']) == depths and list(settings['embed_dims']) == widths:
            return name
    known = '; '.join(f'{name}: depths {s["depths"]}, widths {s["embed_dims"]}'
                      for name, s in cls.arch_zoo.items())
    raise ConversionError(f'An official {backbone} checkpoint with depths {depths} and widths '
                          f'{widths} matches none of our sizes ({known}); nothing was written.')


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
