"""Params, FLOPs, inference throughput, training step time and peak memory of groupmix_backbones
configs, as one table; with official clones, against the official implementations.

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--shape H W ...] [--batch-size N]
        [--mode infer|train|both] [--backbone-only] [--repeat R] [--warmup W] [--rounds K]
        [--device cpu|cuda] [--fuse] [--compile [BACKEND]]
        [--onnxruntime [--int8] [--int8-calibrated] [--ort-optimization L] [--ort-no-arena]]
        [--official-repo PATH ...] [--markdown FILE]

Each model is built as in ``get_flops.py`` (SyncBN -> BN, random weights) and called on random
inputs through its plain tensor forward (``model.backbone`` with ``--backbone-only``).

* infer: eval mode under ``torch.no_grad()``; images/s = batch size / median step time.
* train: train mode, forward, backward of the sum of the means of all outputs, AdamW step.
* peak memory: of one step, above what was in use before it (activations and workspace; weights
  and optimizer state excluded): CUDA max allocated, or on CPU the process's peak RSS (Linux).
* FLOPs: of one image, mmengine's counter (one multiply-add = one FLOP).

With ``--official-repo`` (clones of AILab-CVC/GroupMixFormer, LeapLabTHU/FLatten-Transformer,
OliverRensu/SG-Former, OpenGVLab/STM-Evaluation; imported from there, never vendored), a classifier config whose family has
an official model in ``groupmix_backbones/analysis/official.py`` gets official columns: the
official classifier of the same arch (built for the input size where its constructor takes one),
timed in turns with ours in this process (``--rounds`` rounds of ``--repeat`` steps each), and the
ratios (official time / ours). An official model that fails to build or run at the size says so in
its cells.
``--fuse`` fuses ours for inference first (``fuse_modules``: batch norms folded; infer mode only).
``--compile [BACKEND]`` adds columns of ours compiled with ``torch.compile`` (inductor by default,
dynamic sizes as ``tools/test.py --compile``: one compilation for every image size; compilation
happens in the warm-up, not timed), timed in turns with eager ours, and its speed-up over eager
ours; the official models stay eager. Run as a script, the process keeps freed
memory for reuse (``groupmix_backbones.policy.allocator.keep_freed_cpu_memory``, as the train,
test and infer tools) and flushes denormal floats to zero, for ours and the official alike.
``--onnxruntime`` (infer, CPU) adds ONNX Runtime columns: ours exported as
``tools/deployment/pytorch2onnx.py`` exports it (``groupmix_backbones.deployment``; the same
tensor forward, traced at the input size with a batch of at least 2), checked against PyTorch at
the input, then timed in turns with ours (and the official) in this process, with torch's thread
count as ONNX Runtime's intra-op threads; the speed-up is ours' time / ONNX Runtime's. A model that
fails to export says so in its cell (an mmdet detector exports with ``--backbone-only`` only); an
SG-Former whose tokens ONNX Runtime orders otherwise passes the check with PyTorch given its
token orders (``deployment.replay_token_orders``), and how is printed.
``--int8`` adds ONNX Runtime on the export's dynamic int8 quantization (``pytorch2onnx.py
--quantize int8``), ``--int8-calibrated`` on the one with statically quantized convolutions too
(``--calibration-images``; calibrated here on two random batches of the input's shape: the
ranges change the numbers, not the speed); ``--ort-optimization`` and ``--ort-no-arena`` set the
session's graph optimisation level and memory arena (``deployment.onnx_session``).
"""
import argparse
import datetime
import os.path as osp
import platform
import tempfile

import torch
from mmengine.analysis import parameter_count
from mmengine.config import Config

from groupmix_backbones import fuse_modules
from groupmix_backbones.analysis import (TensorForward, build_model, count_flops, make_step,
                                         measure_alternately)
from groupmix_backbones.analysis.official import OFFICIAL, build_official
from groupmix_backbones.deployment import (ORT_OPTIMIZATION, OnnxRuntimeModel, check_onnx,
                                           export_onnx, quantize_int8)
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory

MODES = {'infer': 'Infer', 'train': 'Train'}


def machine() -> str:
    """CPU model (or GPU name), threads, torch version."""
    cpu = platform.processor() or 'CPU'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    gpu = f', {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ''
    return f'{cpu}{gpu}, {torch.get_num_threads()} threads, torch {torch.__version__}'


def official_repo_for(backbone_type, repos):
    """The first clone that has the official file of ``backbone_type``, or None."""
    spec = OFFICIAL.get(backbone_type)
    return next((repo for repo in repos if spec and osp.isfile(osp.join(repo, spec.module))),
                None)


def build_rows(config, args):
    """Yield (label, shape, ours, official or None, params, FLOPs) of ``config`` at each size."""
    cfg = Config.fromfile(config)
    model, scope = build_model(cfg)
    repo = official_repo_for(cfg.model.backbone.type, args.official_repo)
    label = osp.splitext(osp.basename(config))[0] + (' (backbone)' if args.backbone_only else '')
    for shape in args.shape or [(224, 224) if scope == 'mmpretrain' else (512, 512)]:
        shape = tuple(shape)
        ours = model.backbone if args.backbone_only else TensorForward(model, scope, shape)
        params = parameter_count(ours)['']
        flops = count_flops(ours, torch.randn(1, 3, *shape))[0] if args.flops else None
        official = None
        if repo and scope == 'mmpretrain' and not args.backbone_only:
            size = shape[0] if shape[0] == shape[1] else \
                model.backbone.arch_settings.get('pretrain_img_size', 224)
            try:
                official = build_official(cfg, model.backbone.arch_settings, repo, size)
            except Exception as error:  # official code built for one size only
                official = f'fails to build ({type(error).__name__})'
        yield label, shape, ours, official, params, flops


def onnx_runtime_models(ours, inputs, folder, args):
    """``ours`` exported to ONNX at the input's size (a batch of at least 2) and checked against
    PyTorch on ``inputs``, as ONNX Runtime sessions with torch's thread count and the ``--ort-*``
    options: float32, and with ``--int8`` / ``--int8-calibrated`` its int8 quantizations; or the
    text of why not."""
    path = osp.join(folder, 'model.onnx')
    example = torch.randn(max(2, len(inputs)), *inputs.shape[1:])
    try:
        export_onnx(ours, example, path)
        for check in check_onnx(path, ours, [inputs.cpu()], atol=1e-3):
            if check.note:
                print(check)
    except Exception as error:  # what did not export is a cell of the table
        return [f'fails to export ({type(error).__name__})'] * len(onnx_kinds(args))
    options = dict(threads=torch.get_num_threads(), optimization=args.ort_optimization,
                   arena=args.ort_arena)
    paths = [path] + ([quantize_int8(path, osp.join(folder, 'int8.onnx'))] if args.int8 else [])
    if args.int8_calibrated:
        calibration = [torch.randn_like(inputs).cpu().numpy() for _ in range(2)]
        paths.append(quantize_int8(path, osp.join(folder, 'calibrated.onnx'), calibration))
    return [OnnxRuntimeModel(file, **options) for file in paths]


def measure_row(ours, official, inputs, mode, args, onnx=(), compiled=None):
    """``(ours, official, compiled, *onnx)`` results of ``mode``: ours (seconds, peak); the
    official model's, ours compiled and each ONNX Runtime session's (seconds, peak), the text of a
    failure, or None. ``official``, ``compiled`` and each of ``onnx`` are a model, None or the text
    of a failure to build (ONNX Runtime times inference only)."""
    others = [official, compiled, *(onnx if mode == 'infer' else [None] * len(onnx))]
    for i, other in enumerate(others):  # one step first: what cannot run is a cell, not a stop
        if isinstance(other, torch.nn.Module):
            try:
                make_step(other, inputs, mode)()
            except Exception as error:  # the official model at a size it cannot run, a compiler
                print(f'{type(other).__name__} fails: {type(error).__name__}: {error}'[:2000])
                others[i] = f'fails ({type(error).__name__})'
    runnable = [i for i, other in enumerate(others) if isinstance(other, torch.nn.Module)]
    timing = dict(rounds=args.rounds, repeat=args.repeat, warmup=args.warmup)
    results = measure_alternately([ours] + [others[i] for i in runnable], inputs, mode, **timing)
    done = dict(zip(runnable, results[1:]))
    return (results[0], *(done.get(i, other if isinstance(other, str) else None)
                          for i, other in enumerate(others)))


def other_cells(batch, seconds, theirs, mode, with_peak=True, speed_up_of_theirs=False):
    """The cells of the official model or ONNX Runtime: speed, peak, and the speed-up of ours
    over theirs (their time / ours), or with ``speed_up_of_theirs`` of theirs over ours."""
    blank = ['-', '-'] if with_peak else ['-']
    if theirs is None:
        return ['-', *blank]
    if isinstance(theirs, str):
        return [theirs, *blank]
    value = f'{batch / theirs[0]:.3g}' if mode == 'infer' else f'{theirs[0] * 1e3:.0f}'
    peak = [f'{theirs[1] * 2 ** -20:.0f}'] if with_peak else []
    ratio = seconds / theirs[0] if speed_up_of_theirs else theirs[0] / seconds
    return [value, *peak, f'{ratio:.2f}x']


def row_cells(label, shape, batch, params, flops, results, with_official, with_onnx=False,
              with_compiled=False):
    cells = [label, f'{batch}x{shape[0]}x{shape[1]}', f'{params / 1e6:.2f}',
             '-' if flops is None else f'{flops / 1e9:.2f}']
    for mode, ((seconds, peak), theirs, compiled, *onnx) in results.items():
        value = f'{batch / seconds:.3g}' if mode == 'infer' else f'{seconds * 1e3:.0f}'
        cells += [value, f'{peak * 2 ** -20:.0f}']
        if with_official:
            cells += other_cells(batch, seconds, theirs, mode)
        if with_compiled:
            cells += other_cells(batch, seconds, compiled, mode, with_peak=False,
                                 speed_up_of_theirs=True)
        if with_onnx and mode == 'infer':
            for session in onnx:
                cells += other_cells(batch, seconds, session, mode, with_peak=False,
                                     speed_up_of_theirs=True)
    return cells


def header(modes, with_official, args):
    ours = ' (fused)' if args.fuse else ''
    cells = ['Config', 'Input', 'Params (M)', 'FLOPs (G)']
    for mode in modes:
        unit = 'img/s' if mode == 'infer' else 'step (ms)'
        cells += [f'{MODES[mode]} {unit}{ours}', f'{MODES[mode]} peak (MiB)']
        if with_official:
            cells += [f'Official {mode} {unit}', f'Official {mode} peak (MiB)',
                      f'{MODES[mode]} speed-up']
        if args.compile:
            cells += [f'Compiled {mode} {unit}', f'Compiled {mode} speed-up over ours']
        if args.onnxruntime and mode == 'infer':
            for kind in onnx_kinds(args):
                cells += [f'{kind} {mode} {unit}', f'{kind} speed-up over ours']
    return cells


def onnx_kinds(args):
    """The ONNX Runtime columns' names, in the order of :func:`onnx_runtime_models`."""
    return (['ONNX Runtime'] + (['ONNX Runtime int8'] if args.int8 else [])
            + (['ONNX Runtime int8 calibrated'] if args.int8_calibrated else []))


def markdown(rows):
    lines = ['| ' + ' | '.join(row) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('---' for _ in rows[0]) + '|')
    return '\n'.join(lines)


BEGIN, END = '<!-- benchmark.py table -->', '<!-- end of benchmark.py table -->'


def write_markdown(path: str, table: str, *, begin: str = BEGIN, end: str = END):
    """Write ``table`` to ``path``; in a file that has the markers ``begin`` and ``end`` (as
    docs/benchmarks.md), replace what lies between them and keep the rest."""
    text = ''
    if osp.isfile(path):
        with open(path) as f:
            text = f.read()
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        table = f'{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}'
    with open(path, 'w') as f:
        f.write(table if table.endswith('\n') else table + '\n')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', metavar='CONFIG')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), action='append',
                        help='input size, repeatable (default: 224 224 for classifiers, 512 512 '
                             'otherwise)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--mode', choices=['infer', 'train', 'both'], default='both')
    parser.add_argument('--backbone-only', action='store_true', help='benchmark model.backbone')
    parser.add_argument('--repeat', type=int, default=5, help='timed steps per round')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=2, help='turns of ours and the official')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--fuse', action='store_true', help='fuse our models (infer mode only)')
    parser.add_argument('--compile', nargs='?', const='inductor', metavar='BACKEND',
                        help='also time our models torch.compile-d (default backend: inductor)')
    parser.add_argument('--onnxruntime', action='store_true',
                        help='also time ours exported to ONNX in ONNX Runtime (infer, CPU)')
    parser.add_argument('--int8', action='store_true',
                        help='with --onnxruntime: also time its dynamic int8 quantization')
    parser.add_argument('--int8-calibrated', action='store_true',
                        help='with --onnxruntime: also time its int8 quantization with static '
                             'one-group convolutions')
    parser.add_argument('--ort-optimization', choices=ORT_OPTIMIZATION, default='all',
                        help="ONNX Runtime's graph optimisation level (default %(default)s)")
    parser.add_argument('--ort-no-arena', dest='ort_arena', action='store_false',
                        help="ONNX Runtime without its CPU memory arena")
    parser.add_argument('--no-flops', dest='flops', action='store_false',
                        help='skip counting FLOPs')
    parser.add_argument('--official-repo', action='append', default=[], metavar='PATH',
                        help='clone of an official repository (repeatable)')
    parser.add_argument('--markdown', metavar='FILE',
                        help='also write the table to FILE (between its table markers, if it has '
                             'them, as docs/benchmarks.md)')
    args = parser.parse_args(argv)
    if args.official_repo and args.backbone_only:
        parser.error('--official-repo compares whole classifiers: drop --backbone-only.')
    modes = ['infer', 'train'] if args.mode == 'both' else [args.mode]
    if args.fuse and 'train' in modes:
        parser.error('--fuse folds batch norms for inference: use it with --mode infer.')
    if args.onnxruntime and (args.device != 'cpu' or 'infer' not in modes):
        parser.error('--onnxruntime times ONNX Runtime\'s CPU inference: use it with --device cpu '
                     'and --mode infer or both.')
    if (args.int8 or args.int8_calibrated) and not args.onnxruntime:
        parser.error('--int8 and --int8-calibrated quantize the ONNX Runtime export: add '
                     '--onnxruntime.')
    rows, with_official = [], bool(args.official_repo)
    for label, shape, ours, official, params, flops in (
            row for config in args.configs for row in build_rows(config, args)):
        ours.to(args.device)
        if args.fuse:
            fuse_modules(ours)
        if isinstance(official, torch.nn.Module):
            official.to(args.device)
        inputs = torch.randn(args.batch_size, 3, *shape, device=args.device)
        with tempfile.TemporaryDirectory() as folder:
            onnx = onnx_runtime_models(ours, inputs, folder, args) if args.onnxruntime else ()
            compiled = (torch.compile(ours, backend=args.compile, dynamic=True)
                        if args.compile else None)  # shares ours' weights
            results = {mode: measure_row(ours, official, inputs, mode, args, onnx, compiled)
                       for mode in modes}
        rows.append(row_cells(label, shape, args.batch_size, params, flops, results,
                              with_official, args.onnxruntime, bool(args.compile)))
        print(markdown([header(modes, with_official, args), rows[-1]]), flush=True)
    table = (f'Measured {datetime.date.today()} on {machine()}, {args.device}; median of '
             f'{args.rounds} x {args.repeat} steps after {args.warmup} warm-up'
             f'{", ours and official in turns" if with_official else ""}.\n\n'
             + markdown([header(modes, with_official, args), *rows]))
    print('\n' + table)
    if args.markdown:
        write_markdown(args.markdown, table)


if __name__ == '__main__':
    keep_freed_cpu_memory()
    # denormal floats, which AdamW's moments of layer-scaled branches reach within a few steps,
    # make CPU arithmetic (depthwise convs) several times slower: flushed, for all models alike
    torch.set_flush_denormal(True)
    main()
