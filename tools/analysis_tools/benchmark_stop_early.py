"""What ``out_indices`` that stop early save: a backbone returning some stages (a detector's
``0 1 2``) against the same backbone returning all, timed in turns on the same inputs.

    python tools/analysis_tools/benchmark_stop_early.py TYPE ARCH [--indices 0 1 2]
        [--shape H W] [--batch-size N] [--mode infer|train] [--repeat R] [--rounds K]
        [--warmup W] [--device cpu|cuda] [--threads T]

Both backbones have the same weights; the stages past the last of ``--indices`` are not run (and
frozen, so training computes no gradient for them). Time is the median over ``K`` rounds of ``R``
steps each (``analysis.measure_alternately``: inference under ``no_grad``, or a training step).
"""
import argparse

import torch

import groupmix_backbones  # noqa: F401  (registers the backbones)
from groupmix_backbones.analysis import measure_alternately
from groupmix_backbones.registry import BACKBONES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('type', help='a registered backbone, e.g. GroupMixFormer')
    parser.add_argument('arch', help='one of its named archs, e.g. small')
    parser.add_argument('--indices', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--mode', choices=['infer', 'train'], default='infer')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, help='CPU threads (torch.set_num_threads)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cls = next((c for c in BACKBONES if c.__name__ == args.type), None)
    if cls is None:
        parser.error(f'unknown type {args.type!r}; registered: '
                     f'{", ".join(c.__name__ for c in BACKBONES)}')
    torch.manual_seed(0)
    every = cls(arch=args.arch).to(args.device)
    some = cls(arch=args.arch, out_indices=args.indices).to(args.device)
    some.load_state_dict(every.state_dict())
    inputs = torch.randn(args.batch_size, 3, *args.shape, device=args.device)
    (t_every, _), (t_some, _) = measure_alternately(
        [every, some], inputs, args.mode, rounds=args.rounds, repeat=args.repeat,
        warmup=args.warmup)
    print(f'{args.type} {args.arch}, {args.mode}, {args.batch_size}x3x{args.shape[0]}x'
          f'{args.shape[1]} on {args.device} ({torch.get_num_threads()} threads):')
    print(f'  out_indices {tuple(every.out_indices)}: {t_every * 1000:.1f} ms')
    print(f'  out_indices {tuple(some.out_indices)}: {t_some * 1000:.1f} ms '
          f'({(1 - t_some / t_every) * 100:.1f}% saved)')


if __name__ == '__main__':
    main()
