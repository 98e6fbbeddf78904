"""Convert an official GroupMixFormer checkpoint (AILab-CVC/GroupMixFormer) into ours.

Usage: python tools/model_converters/groupmixformer2mmpretrain.py SRC DST

SRC is ``{'model': state_dict}`` or a bare state dict. DST loads strictly into the ImageClassifier
built from ``mmpretrain_cfgs/groupmixformer/*_in1k.py`` and, with ``prefix='backbone.'``, into the
detection and segmentation backbones.
"""
import argparse
import os.path as osp
import re
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..'))
from groupmix_backbones.checkpoint import safe_torch_load  # noqa: E402

# (official pattern, our replacement), applied in order to every key
RULES = [
    (r'^conv_stem\.proj(\d)\.', lambda m: f'backbone.stem.{int(m[1]) - 1}.conv.'),
    (r'^conv_stem\.norm(\d)\.', lambda m: f'backbone.stem.{int(m[1]) - 1}.bn.'),
    (r'^patch_embed_layers\.', 'backbone.patch_embeds.'),
    (r'^groupmixformer_backbone\.(\d+)\.gma_stage\.', r'backbone.stages.\1.'),
    (r'\.cpe\.proj\.', '.cpe.'),
    (r'\.att\.', '.attn.'),
    (r'\.aggregator\.agg0\.', '.local_agg.'),
    (r'\.aggregator\.norm(\d)\.', r'.group_aggs.\1.norm.'),
    (r'\.aggregator\.agg(\d)\.', r'.group_aggs.\1.conv.'),
    (r'\.crpe\.conv_list\.', '.crpe.convs.'),
    (r'\.conv1\.', '.depthwise.'),
    (r'\.pointwise_conv\.', '.pointwise.'),
    (r'^norm4\.', 'backbone.out_norm.'),
    (r'^head\.', 'head.fc.'),
]


def convert(official: dict) -> dict:
    """Rename the official GroupMixFormer keys to ours; raise on keys we do not know."""
    state = official.get('model', official.get('state_dict', official))
    converted = {}
    for key, value in state.items():
        new = key
        for pattern, replacement in RULES:
            new = re.sub(pattern, replacement, new)
        if not new.startswith(('backbone.', 'head.')):
            raise KeyError(f'Not an official GroupMixFormer key: {key!r}.')
        converted[new] = value
    return converted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='converted checkpoint to write')
    args = parser.parse_args()
    state = convert(safe_torch_load(args.src, map_location='cpu'))
    torch.save({'state_dict': state, 'meta': {'converted_from': osp.basename(args.src)}}, args.dst)
    print(f'Converted {len(state)} tensors from {args.src} to {args.dst}')


if __name__ == '__main__':
    main()
