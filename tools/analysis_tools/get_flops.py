"""Parameters and FLOPs of any groupmix_backbones config, counted by mmengine's analysis (fvcore's
rules: one multiply-add is one FLOP), softmax attention through ``scaled_dot_product_attention``
included (as its two matmuls). Ops the counter has no rule for are listed.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W]
"""
import argparse

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config

from groupmix_backbones.analysis import TensorForward, build_model, count_flops


def count(config, shape):
    """``(parameters, FLOPs, uncounted ops)`` of ``config``'s model on one 3 x H x W input."""
    model, scope = build_model(config)
    flops, uncounted = count_flops(TensorForward(model, scope, shape), torch.randn(1, 3, *shape))
    return parameter_count(model)[''], flops, uncounted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: 224 224 for classifiers, 512 512 otherwise)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    shape = tuple(args.shape or ((224, 224) if cfg.get('default_scope') == 'mmpretrain'
                                 else (512, 512)))
    params, flops, uncounted = count(cfg, shape)
    print(f'Config: {args.config}\nInput shape: (3, {shape[0]}, {shape[1]})\n'
          f'Params: {params / 1e6:.2f}M ({params:,})\nFLOPs: {flops / 1e9:.2f}G')
    if uncounted:
        print('Not counted (no FLOP rule; elementwise ops, softmax, ...): ' + ', '.join(
            f'{op} x{calls}' for op, calls in sorted(uncounted.items())))


if __name__ == '__main__':
    main()
