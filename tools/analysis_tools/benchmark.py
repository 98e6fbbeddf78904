"""Throughput and peak memory of any groupmix_backbones config: inference and one training step.

    python tools/analysis_tools/benchmark.py CONFIG [--shape H W] [--batch-size N]
        [--mode infer|train|both] [--repeat R] [--warmup W] [--device cpu|cuda] [--backbone-only]

The model is built as in ``get_flops.py`` (SyncBN -> BN, no pretrained weights) and called on random
inputs through its plain tensor forward (``model.backbone`` with ``--backbone-only``).

* infer: eval mode under ``torch.no_grad()``.
* train: train mode, forward, backward of the sum of the means of all output tensors, AdamW step.

Images/s is the batch size over the median time of ``R`` timed iterations (after ``W`` warm-up
ones). Peak memory, over warm-up and timed iterations, is ``torch.cuda.max_memory_allocated`` on
CUDA (weights included) and, on CPU, the process's peak resident set size above its size before the
mode ran (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``; elsewhere ``getrusage``, which
cannot be reset, so a mode that peaks lower than an earlier one shows 0).
"""
import argparse

import torch

from groupmix_backbones.analysis import TensorForward, build_model, measure


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: 224 224 for classifiers, 512 512 otherwise)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--mode', choices=['infer', 'train', 'both'], default='both')
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--backbone-only', action='store_true',
                        help='benchmark model.backbone only')
    args = parser.parse_args()

    model, scope = build_model(args.config)
    shape = tuple(args.shape or ((224, 224) if scope == 'mmpretrain' else (512, 512)))
    if args.backbone_only:
        model = model.backbone
    else:
        model = TensorForward(model, scope, shape)
    model.to(args.device)
    inputs = torch.randn(args.batch_size, 3, *shape, device=args.device)
    modes = ['infer', 'train'] if args.mode == 'both' else [args.mode]
    memory_kind = 'CUDA max allocated' if args.device == 'cuda' else 'peak RSS increase'

    print(f'Config: {args.config}{" (backbone only)" if args.backbone_only else ""}\n'
          f'Input: {args.batch_size} x 3 x {shape[0]} x {shape[1]} on {args.device}, '
          f'{args.repeat} repeats after {args.warmup} warm-up, {torch.get_num_threads()} threads')
    print(f'| {"mode":5} | {"ms/iter":>9} | {"images/s":>9} | {memory_kind + " (MiB)":>24} |')
    print(f'|{"-" * 7}|{"-" * 11}|{"-" * 11}|{"-" * 26}|')
    for mode in modes:
        seconds, memory = measure(model, inputs, mode, args.repeat, args.warmup)
        print(f'| {mode:5} | {seconds * 1e3:9.1f} | {args.batch_size / seconds:9.2f} | '
              f'{memory / 2**20:24.1f} |', flush=True)


if __name__ == '__main__':
    main()
