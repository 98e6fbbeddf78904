"""Export a config's model and checkpoint to ONNX with dynamic batch, height and width, then check
the file in ONNX Runtime against PyTorch at the export size and at a second size.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE.onnx [--backbone-only]
        [--shape H W] [--check-shape H W ...] [--atol 1e-4] [--opset 18]
        [--quantize int8 [--calibration-images N] [--agreement-images N]]

mmpretrain configs export class logits, mmseg configs the segmentor's logits at the input size
(``encode_decode``), ``--backbone-only`` the backbone's maps through the config's neck (mmdet:
backbone + FPN; detectors export this way only). The graph takes a normalised image batch
``input`` (B, 3, H, W), float32: mean/std and channel order stay with the caller, as the data
preprocessor applies them. The checkpoint is loaded strictly through the safe loader.

The graph is traced at ``--shape`` (default 513x577 with a batch of 2: every stage's map odd and
larger than its windows, so that no size of the example is fixed in the graph), then run in ONNX
Runtime at that size and at each ``--check-shape`` (default 224x224 and 333x517, a batch of 1).
A file that fails or differs by more than ``--atol`` there is renamed to FILE.onnx.failed and the
tool exits with an error naming the size and the difference. An SG-Former's tokens may be grouped
otherwise in ONNX Runtime (near-equal significance values that float rounding orders otherwise):
where its outputs differ, PyTorch runs again with ONNX Runtime's token orders, and the check passes
if they then agree within ``--atol``, printing how many tokens were ordered otherwise (and where)
and the difference with PyTorch's own orders; else the error says that the arithmetic differs.

``--quantize int8`` also writes FILE.int8.onnx, ONNX Runtime's dynamic int8 quantization of the
checked file (``groupmix_backbones.deployment.quantize_int8``), and compares it with float32: a
classifier by the top-1 agreement on the config's test set (the demo validation images for the
demo configs; ``--agreement-images N`` of them, all by default), other models by the largest
difference on the check inputs. ``--calibration-images N`` quantizes the one-group convolutions
too (PVTv2-style MLPs, patch embeddings), statically, with activation ranges calibrated on the
first N images of the config's training set through its test pipeline (faster where they weigh:
docs/deployment.md).
"""
import argparse
import copy
import os
import sys

import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.analysis import build_model
from groupmix_backbones.deployment import (EXPORT_SIZE, INPUT_NAME, OPSET, ExportForward,
                                           OnnxMismatchError, check_onnx, export_onnx,
                                           onnx_session, quantize_int8)

CHECK_SHAPES = ((224, 224), (333, 517))


def convert(config: str, checkpoint: str, out: str, *, backbone_only: bool = False,
            shape=EXPORT_SIZE, check_shapes=CHECK_SHAPES, atol: float = 1e-4, opset: int = OPSET):
    """Export and check; returns [(input shape, max |difference|)] of the checks."""
    cfg = Config.fromfile(config)
    model, scope = build_model(cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    module = ExportForward(model, scope, backbone_only=backbone_only).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, *shape, generator=generator)
    with torch.no_grad():
        export_onnx(module, example, out, opset=opset)
    others = [torch.randn(1, 3, *size, generator=generator) for size in check_shapes]
    try:
        return check_onnx(out, module, [example, *others], atol=atol)
    except OnnxMismatchError:
        os.replace(out, out + '.failed')
        raise


def preprocessed_batches(config: str, split: str = 'test'):
    """The config's ``split`` ('test' or 'train') images through its test pipeline and the
    model's data preprocessor (normalisation), as the exported graph takes them: (B, 3, H, W)
    float32 arrays."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    model, scope = build_model(cfg)
    loader = copy.deepcopy(cfg[f'{split}_dataloader'])
    if 'pipeline' not in loader.dataset:
        raise ValueError(f'The {split} set of {config} is a {loader.dataset.type} without a '
                         f'pipeline of its own; its images cannot go through the test pipeline.')
    loader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    with DefaultScope.overwrite_default_scope(scope):
        for batch in Runner.build_dataloader(loader):
            yield model.data_preprocessor(batch, False)['inputs'].numpy()


def first_images(batches, limit=None):
    """``batches`` until ``limit`` images (all without one), the last one cut to fit."""
    seen = 0
    for batch in batches:
        yield batch if limit is None else batch[:limit - seen]
        seen += len(batch)
        if limit is not None and seen >= limit:
            return


def int8_agreement(config: str, float_path: str, int8_path: str, limit=None):
    """Top-1 agreement of the int8 and float32 files on the config's test set (its first
    ``limit`` images): (agreeing, images)."""
    sessions = [onnx_session(path) for path in (float_path, int8_path)]
    agree = seen = 0
    for inputs in first_images(preprocessed_batches(config), limit):
        labels = [session.run(None, {INPUT_NAME: inputs})[0].argmax(1) for session in sessions]
        agree += int((labels[0] == labels[1]).sum())
        seen += len(inputs)
    return agree, seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, metavar='FILE.onnx')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the backbone (and neck: FPN for mmdet configs)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=EXPORT_SIZE,
                        help='export size (default %(default)s)')
    parser.add_argument('--check-shape', type=int, nargs=2, metavar=('H', 'W'), action='append',
                        help='other size checked in ONNX Runtime, repeatable (default 224 224 '
                             'and 333 517)')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest |ONNX Runtime - PyTorch| allowed')
    parser.add_argument('--opset', type=int, default=OPSET, help='ONNX opset (17 or later)')
    parser.add_argument('--quantize', choices=['int8'],
                        help='also write FILE.int8.onnx (dynamic int8) and compare it with float32')
    parser.add_argument('--agreement-images', type=int, metavar='N',
                        help='--quantize: compare top-1 on the first N test images (default all)')
    parser.add_argument('--calibration-images', type=int, metavar='N',
                        help='--quantize: also quantize the one-group convolutions, calibrated '
                             'on the first N training images')
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error(f'--opset {args.opset}: the graphs need opset 17 or later '
                     f'(LayerNormalization).')
    for name in ('agreement_images', 'calibration_images'):
        if getattr(args, name) is not None and (not args.quantize or getattr(args, name) < 1):
            parser.error(f'--{name.replace("_", "-")} takes a number of images (1 or more), with '
                         f'--quantize int8.')
    check_shapes = [tuple(size) for size in args.check_shape or CHECK_SHAPES]
    if min(args.shape) < 64 or min(min(size) for size in check_shapes) < 32:
        parser.error('--shape needs sides of at least 64 (sizes of 1 in any stage would be '
                     'fixed in the graph) and --check-shape of at least 32.')
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    try:
        checks = convert(args.config, args.checkpoint, args.out, backbone_only=args.backbone_only,
                         shape=tuple(args.shape), check_shapes=check_shapes, atol=args.atol,
                         opset=args.opset)
    except (OnnxMismatchError, ValueError) as error:
        sys.exit(f'error: {error}')
    for check in checks:
        print(check)
    print(f'Wrote {args.out} (dynamic batch, height and width; opset {args.opset}).')
    if args.quantize:
        try:
            report_int8(args)
        except ValueError as error:
            sys.exit(f'error: {error}')


def report_int8(args):
    """--quantize int8: write FILE.int8.onnx and compare it with the float32 file."""
    calibrated = 0  # images

    def calibration():
        nonlocal calibrated
        for batch in first_images(preprocessed_batches(args.config, 'train'),
                                  args.calibration_images):
            calibrated += len(batch)
            yield batch

    int8 = quantize_int8(args.out, f'{os.path.splitext(args.out)[0]}.int8.onnx',
                         calibration() if args.calibration_images else None)
    scope = Config.fromfile(args.config).get('default_scope')
    if scope == 'mmpretrain' and not args.backbone_only:
        agree, seen = int8_agreement(args.config, args.out, int8, args.agreement_images)
        print(f'int8 vs float32: top-1 agreement {agree}/{seen} ({100 * agree / seen:.1f}%) on '
              f'the config\'s test images')
    else:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 3, 224, 224, generator=generator).numpy()
        ref, got = (onnx_session(path).run(None, {INPUT_NAME: x}) for path in (args.out, int8))
        error = max(float(abs(a - b).max()) for a, b in zip(ref, got))
        print(f'int8 vs float32 on 1x3x224x224: max |difference| {error:.3g}')
    convs = (f'; one-group convolutions static, calibrated on {calibrated} training images'
             if calibrated else '')
    print(f'Wrote {int8} (int8: MatMul/Gemm weights int8, activations at run time{convs}).')


if __name__ == '__main__':
    main()
