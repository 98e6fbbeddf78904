"""FLatten's focused linear attention against global softmax attention on the same tokens: backbone
forward time and peak memory as the input grows.

    python tools/analysis_tools/benchmark_linear_attention.py [--hosts pvt pvtv2 swin cswin]
        [--sizes 256 512 1024] [--repeat R] [--warmup W] [--device cpu|cuda] [--max-seconds S]
        [--threads T]

Each host is built from its smallest arch (PVT ``tiny``, PVTv2 ``b0``, Swin ``tiny``, CSWin
``tiny``) twice, through the classes' own ``attn_types`` option:

* ``linear``: as released (focused linear attention in the ``L`` stages).
* ``softmax``: the released ``L`` stages become global softmax attention over the same tokens;
  the released softmax stages (Swin's 7x7 windows, CSWin's stripes) are kept. PVT / PVTv2: ``S``
  with ``sr_ratios`` 1 (no spatial reduction). CSWin: ``S`` on its whole-map stages 1-2. Swin has
  one window size for all stages, so its softmax stages 1-2 come from a build whose windows are
  the whole stage maps (``window_size`` = ``pretrain_img_size / 4``, per input size) and replace
  the linear stages of the released build (relative position bias included, as Swin's).

Batch 1, eval, ``no_grad``; time is the median of ``R`` forwards after ``W`` warm-ups, memory as in
``benchmark.py`` (CPU: peak RSS increase; CUDA: max allocated, weights included). The growth
columns divide by the previous measured size: doubling the side gives ~4x for cost linear in the
pixel count, ~16x for quadratic. A size is skipped when the previous one's time times the quadratic
factor ``(side ratio)**4``, times ``W + R`` forwards, exceeds ``--max-seconds``, or its memory times
that factor exceeds the memory available. Fused softmax kernels (CUDA, CPU flash attention without
a bias) do not store the attention matrix: their time is quadratic, their memory need not be.
"""
import argparse
import gc

import torch

from groupmix_backbones.analysis import measure
from groupmix_backbones.models import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin

HOSTS = {'pvt': (FLattenPVT, 'tiny'), 'pvtv2': (FLattenPVTv2, 'b0'),
         'swin': (FLattenSwin, 'tiny'), 'cswin': (FLattenCSWin, 'tiny')}


def softmax_arch(host, settings, size):
    """Arch dict whose released ``L`` stages are global softmax attention at input ``size``."""
    types = settings['attn_types']
    if host == 'swin':  # windows = stage maps; the released S stages are built L (cheap), not used
        side = -(-size // 32) * 32
        return dict(settings, attn_types=types.translate(str.maketrans('LS', 'SL')),
                    window_size=side // 4, pretrain_img_size=side)
    arch = dict(settings, attn_types='S' * len(types))
    if host.startswith('pvt'):
        arch['sr_ratios'] = [1] * len(types)
    return arch


def build(host, variant, size):
    cls, name = HOSTS[host]
    settings = cls.arch_zoo[name]
    model = cls(dict(settings))
    if variant == 'softmax':
        softmax = cls(softmax_arch(host, settings, size))
        for i, attn_type in enumerate(settings['attn_types']):
            if attn_type == 'L':
                model.stages[i] = softmax.stages[i]
    return model.eval()


def available_memory(device):
    if device == 'cuda':
        return torch.cuda.mem_get_info()[0]
    with open('/proc/meminfo') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', nargs='+', choices=list(HOSTS), default=list(HOSTS))
    parser.add_argument('--sizes', type=int, nargs='+', default=[256, 512, 1024])
    parser.add_argument('--variants', nargs='+', choices=['linear', 'softmax'],
                        default=['linear', 'softmax'])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--max-seconds', type=float, default=60.,
                        help='skip a size whose estimated measurement takes longer')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    memory_kind = 'CUDA max allocated' if args.device == 'cuda' else 'peak RSS increase'
    print(f'{args.device}, {torch.get_num_threads()} threads, batch 1, median of {args.repeat} '
          f'after {args.warmup} warm-up; memory: {memory_kind}')
    print(f'| {"host":5} | {"variant":7} | {"size":>4} | {"time (ms)":>9} | {"peak (MiB)":>10} | '
          f'{"time x":>6} | {"mem x":>6} |')
    print(f'|{"-" * 7}|{"-" * 9}|{"-" * 6}|{"-" * 11}|{"-" * 12}|{"-" * 8}|{"-" * 8}|')
    for host in args.hosts:
        for variant in args.variants:
            prev = None  # (size, seconds, bytes) of the last measured size
            for size in sorted(args.sizes):
                row = f'| {host:5} | {variant:7} | {size:4} |'
                quad = (size / prev[0]) ** 4 if prev else None
                if prev and prev[1] * quad * (args.warmup + args.repeat) > args.max_seconds:
                    print(f'{row} skipped (>{args.max_seconds:g} s est.)', flush=True)
                    continue
                if prev and prev[2] * quad > available_memory(args.device):
                    print(f'{row} skipped (>{prev[2] * quad / 2**20:.0f} MiB est.)', flush=True)
                    continue
                model = build(host, variant, size).to(args.device)
                inputs = torch.randn(1, 3, size, size, device=args.device)
                seconds, memory = measure(model, inputs, 'infer', args.repeat,
                                                    args.warmup)
                del model, inputs
                gc.collect()
                growth = ('', '') if prev is None else (
                    f'{seconds / prev[1]:5.1f}x', f'{memory / max(prev[2], 1):5.1f}x')
                print(f'{row} {seconds * 1e3:9.1f} | {memory / 2**20:10.1f} | {growth[0]:>6} | '
                      f'{growth[1]:>6} |', flush=True)
                prev = (size, seconds, memory)


if __name__ == '__main__':
    main()
