"""DCNv3's sampling core and layer: forward and forward + backward time of our ``deformable_sample``
(``grid_sample``, and on CUDA mmcv's compiled op) against mmcv's CPU reference
``multi_scale_deformable_attn_pytorch`` on the same inputs, and of the whole ``DCNv3`` layer.

    python tools/analysis_tools/benchmark_dcnv3.py [--sizes 14 28 56] [--batch B] [--dim C]
        [--heads M] [--repeat R] [--warmup W] [--device cpu|cuda] [--threads T]

Square maps of side ``size``, ``points`` 9, random locations around each pixel; time is the median
of ``R`` runs after ``W`` warm-ups (CUDA synchronised).
"""
import argparse
import statistics
import time

import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from groupmix_backbones.models.layers import DCNv3, deformable_sample
from groupmix_backbones.models.layers.deformable import _mmcv_deform_attn


def median_seconds(fn, repeat, warmup, cuda):
    times = []
    for i in range(warmup + repeat):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def mmcv_reference(value, locations, weights):
    B, H, W, heads, d = value.shape
    return multi_scale_deformable_attn_pytorch(
        value.reshape(B, H * W, heads, d), torch.tensor([[H, W]], device=value.device),
        locations[:, :, :, None], weights[:, :, :, None])


def candidates(args):
    """(name, fn(size) -> (forward closure, its differentiable inputs))."""
    device, heads, d = args.device, args.heads, args.dim // args.heads

    def core(sampler):
        def make(size):
            value = torch.randn(args.batch, size, size, heads, d, device=device)
            locations = torch.rand(args.batch, size * size, heads, 9, 2, device=device)
            weights = torch.rand(args.batch, size * size, heads, 9, device=device).softmax(-1)
            inputs = [t.requires_grad_() for t in (value, locations, weights)]
            return lambda: sampler(*inputs), inputs
        return make

    def layer(backend):
        def make(size):
            module = DCNv3(args.dim, num_heads=heads, backend=backend).to(device)
            x = torch.randn(args.batch, size * size, args.dim, device=device, requires_grad=True)
            return lambda: module(x, (size, size)), [x, *module.parameters()]
        return make

    rows = [('sample: ours, grid_sample', core(
        lambda *t: deformable_sample(*t, backend='pytorch'))),
            ('sample: mmcv pytorch reference', core(mmcv_reference))]
    cuda_op = device == 'cuda' and _mmcv_deform_attn() is not None
    if cuda_op:
        rows.append(('sample: ours, mmcv CUDA op', core(
            lambda *t: deformable_sample(*t, backend='mmcv'))))
    rows.append(('DCNv3 layer, grid_sample', layer('pytorch')))
    if cuda_op:
        rows.append(('DCNv3 layer, mmcv CUDA op', layer('mmcv')))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[14, 28, 56])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--dim', type=int, default=64)
    parser.add_argument('--heads', type=int, default=4)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuda = args.device == 'cuda'
    print(f'{args.device}, {torch.get_num_threads()} threads, batch {args.batch}, dim {args.dim}, '
          f'{args.heads} heads, 9 points; median of {args.repeat} after {args.warmup} warm-ups')
    print(f'| {"what":31} | {"size":>4} | {"forward (ms)":>12} | {"fwd+bwd (ms)":>12} |')
    print(f'|{"-" * 33}|{"-" * 6}|{"-" * 14}|{"-" * 14}|')
    for name, make in candidates(args):
        for size in args.sizes:
            forward, inputs = make(size)
            with torch.no_grad():
                fwd = median_seconds(forward, args.repeat, args.warmup, cuda)

            def train_step():
                grads = torch.autograd.grad(forward().sum(), inputs)
                del grads

            both = median_seconds(train_step, args.repeat, args.warmup, cuda)
            print(f'| {name:31} | {size:4} | {fwd * 1e3:12.2f} | {both * 1e3:12.2f} |', flush=True)


if __name__ == '__main__':
    main()
