"""Convert an official FLatten Transformer checkpoint (LeapLabTHU/FLatten-Transformer) into ours.

Usage: python tools/model_converters/flatten2mmpretrain.py SRC DST

SRC is ``{'model': state_dict}`` or a bare state dict of FLatten-PVT, -PVTv2, -Swin or -CSWin (the
host is recognised from the keys). DST loads strictly into an ImageClassifier with
``backbone=dict(type=<FLattenPVT|FLattenPVTv2|FLattenSwin|FLattenCSWin>, arch=..., out_indices=(3,),
final_norm=True)`` (``final_norm=False`` for FLattenPVT, none for FLattenPVTv2), a
``GlobalAveragePooling`` neck and a ``LinearClsHead``; and, with ``prefix='backbone.'``, into the
detection and segmentation backbones.

Dropped keys: Swin's ``relative_position_index`` and ``attn_mask`` buffers (rebuilt for every map
size) and FLatten-PVT's final ``norm``, which the official forward never applies.
"""
import argparse
import os.path as osp
import re
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..'))
from groupmix_backbones.checkpoint import safe_torch_load  # noqa: E402

WB = r'(weight|bias)'

# keys inside one block: (official, ours); None drops the key
BLOCK_RULES = [
    (rf'(norm1|norm2)\.{WB}', r'\1.\2'),
    (rf'attn\.(q|kv|qkv|proj|sr|norm|dwc)\.{WB}', r'attn.\1.\2'),
    (r'attn\.scale', 'attn.focus_scale'),
    (r'attn\.positional_encoding', 'attn.key_pos_embed'),
    (r'attn\.relative_position_bias_table', 'attn.rel_pos_table'),
    (r'attn\.relative_position_index|attn_mask', None),
    (rf'mlp\.(fc1|fc2)\.{WB}', r'mlp.\1.\2'),
    (rf'mlp\.dwconv\.dwconv\.{WB}', r'mlp.dwconv.\1'),
    (rf'(qkv|proj)\.{WB}', r'\1.\2'),  # CSWin blocks
    (rf'attns\.(\d)\.get_v\.{WB}', r'branches.\1.lepe.\2'),
    (rf'attns\.(\d)\.dwc\.{WB}', r'branches.\1.dwc.\2'),
    (r'attns\.(\d)\.scale', r'branches.\1.focus_scale'),
    (r'attns\.(\d)\.positional_encoding', r'branches.\1.key_pos_embed'),
]


def _stage_embed(stage):
    """Our name of the patch embedding that starts official stage ``stage`` (1-based)."""
    stage = int(stage)
    return 'backbone.patch_embed' if stage == 1 else f'backbone.stages.{stage - 1}.downsample'


def _block(stage, index, rest):
    for pattern, replacement in BLOCK_RULES:
        if re.fullmatch(pattern, rest):
            if replacement is None:
                return None
            return f'backbone.stages.{stage}.blocks.{index}.' + re.sub(pattern, replacement, rest)
    raise KeyError(rest)


_PVT_COMMON = [
    (rf'patch_embed(\d)\.(proj|norm)\.{WB}', lambda m: f'{_stage_embed(m[1])}.{m[2]}.{m[3]}'),
    (r'block(\d)\.(\d+)\.(.+)', lambda m: _block(int(m[1]) - 1, m[2], m[3])),
    (rf'head\.{WB}', r'head.fc.\1'),
]

# host: (official full-key pattern, ours: str template, callable or None to drop)
HOST_RULES = {
    'FLattenPVT': _PVT_COMMON + [
        (r'pos_embed(\d)', lambda m: f'{_stage_embed(m[1])}.pos_embed'),
        (rf'norm\.{WB}', None),  # built but unused by the official FLatten-PVT forward
    ],
    'FLattenPVTv2': _PVT_COMMON + [
        (rf'norm(\d)\.{WB}', lambda m: f'backbone.stages.{int(m[1]) - 1}.norm.{m[2]}'),
    ],
    'FLattenSwin': [
        (rf'patch_embed\.(proj|norm)\.{WB}', r'backbone.patch_embed.\1.\2'),
        (r'layers\.(\d)\.blocks\.(\d+)\.(.+)', lambda m: _block(m[1], m[2], m[3])),
        (rf'layers\.(\d)\.downsample\.(norm|reduction)\.{WB}',
         lambda m: f'backbone.stages.{int(m[1]) + 1}.downsample.{m[2]}.{m[3]}'),
        (rf'norm\.{WB}', r'backbone.out_norm.\1'),
        (rf'head\.{WB}', r'head.fc.\1'),
    ],
    'FLattenCSWin': [
        (rf'stage1_conv_embed\.0\.{WB}', r'backbone.patch_embed.proj.\1'),
        (rf'stage1_conv_embed\.2\.{WB}', r'backbone.patch_embed.norm.\1'),
        (r'stage(\d)\.(\d+)\.(.+)', lambda m: _block(int(m[1]) - 1, m[2], m[3])),
        (rf'merge(\d)\.(conv|norm)\.{WB}', lambda m: f'backbone.stages.{m[1]}.downsample.'
                                                     f'{"proj" if m[2] == "conv" else "norm"}.{m[3]}'),
        (rf'norm\.{WB}', r'backbone.out_norm.\1'),
        (rf'head\.{WB}', r'head.fc.\1'),
    ],
}


def detect_host(state: dict) -> str:
    """Which FLatten host an official state dict belongs to."""
    if 'stage1_conv_embed.0.weight' in state:
        return 'FLattenCSWin'
    if any(key.startswith('layers.') for key in state):
        return 'FLattenSwin'
    if 'pos_embed1' in state:
        return 'FLattenPVT'
    if 'patch_embed1.proj.weight' in state:
        return 'FLattenPVTv2'
    raise KeyError('Not an official FLatten checkpoint: found none of stage1_conv_embed.* (CSWin), '
                   'layers.* (Swin), pos_embed1 (PVT), patch_embed1.* (PVTv2).')


def convert(official: dict):
    """Rename official FLatten keys to ours; returns ``(state_dict, host)``; raises on unknown keys."""
    state = official.get('model', official.get('state_dict', official))
    host = detect_host(state)
    converted = {}
    for key, value in state.items():
        for pattern, replacement in HOST_RULES[host]:
            match = re.fullmatch(pattern, key)
            if match:
                break
        else:
            raise KeyError(f'Unknown key {key!r} for an official {host} checkpoint.')
        try:
            new = (replacement(match) if callable(replacement)
                   else None if replacement is None else match.expand(replacement))
        except KeyError:
            raise KeyError(f'Unknown key {key!r} for an official {host} checkpoint.') from None
        if new is not None:
            converted[new] = value
    return converted, host


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    args = parser.parse_args()
    state, host = convert(safe_torch_load(args.src, map_location='cpu'))
    torch.save({'state_dict': state, 'meta': {'converted_from': osp.basename(args.src),
                                              'backbone': host}}, args.dst)
    print(f'Converted {len(state)} tensors of an official {host} from {args.src} to {args.dst}')


if __name__ == '__main__':
    main()
