"""SG-Former's attention against PVT-style global attention of the same width: backbone time and
peak memory at detection and segmentation sizes.

    python tools/analysis_tools/benchmark_sgformer.py [--arch s] [--shapes 512x512 800x1216]
        [--mode infer|train] [--repeat R] [--warmup W] [--device cpu|cuda] [--threads T]

The backbone of ``--arch`` is built twice: as released (stages 1-3 alternate hybrid-scale and
significance-guided attention) and with every attention of stages 1-3 replaced by PVT's spatial-
reduction attention (``SpatialReductionAttention``: all heads attend to the map shrunk by the
stage's ``sr_ratio``, as SG-Former's global half does), everything else equal (widths, heads, MLPs,
stem, downsampling, stage 4). Batch 1; time is the median of ``R`` iterations after ``W`` warm-ups,
memory as in ``benchmark.py`` (CPU: peak RSS increase; CUDA: max allocated, weights included).
"""
import argparse
import gc

import torch
import torch.nn as nn

from groupmix_backbones.analysis import measure
from groupmix_backbones.models import SGFormer
from groupmix_backbones.models.layers import SpatialReductionAttention


class PVTAttention(nn.Module):
    """PVT's attention in an SG-Former block (which passes a significance map along)."""

    def __init__(self, dim, *, num_heads, sr_ratio):
        super().__init__()
        self.attn = SpatialReductionAttention(dim, num_heads=num_heads, sr_ratio=sr_ratio)

    def forward(self, x, hw_shape, significance=None):
        return self.attn(x, hw_shape), None


def build(arch, variant):
    model = SGFormer(arch=arch)
    if variant == 'pvt':
        settings = model.arch_settings
        for i, stage in enumerate(model.stages):
            sr_ratio = settings['sr_ratios'][i]
            if sr_ratio == 1:
                continue
            for block in stage.blocks:
                block.attn = PVTAttention(model.embed_dims[i], num_heads=settings['num_heads'][i],
                                          sr_ratio=sr_ratio)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='s', choices=list(SGFormer.arch_zoo))
    parser.add_argument('--shapes', nargs='+', default=['512x512', '800x1216'])
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    memory_kind = 'CUDA max allocated' if args.device == 'cuda' else 'peak RSS increase'
    print(f'SG-Former-{args.arch.upper()} backbone, {args.mode}, {args.device}, '
          f'{torch.get_num_threads()} threads, batch 1, median of {args.repeat} after '
          f'{args.warmup} warm-up; memory: {memory_kind}')
    print(f'| {"attention":9} | {"shape":>8} | {"time (ms)":>9} | {"peak (MiB)":>10} |')
    print(f'|{"-" * 11}|{"-" * 10}|{"-" * 11}|{"-" * 12}|')
    for shape in args.shapes:
        H, W = (int(side) for side in shape.split('x'))
        for variant in ('sgformer', 'pvt'):
            model = build(args.arch, variant).to(args.device)
            inputs = torch.randn(1, 3, H, W, device=args.device)
            seconds, memory = measure(model, inputs, args.mode, args.repeat, args.warmup)
            del model, inputs
            gc.collect()
            print(f'| {variant:9} | {shape:>8} | {seconds * 1e3:9.1f} | {memory / 2**20:10.1f} |',
                  flush=True)


if __name__ == '__main__':
    main()
