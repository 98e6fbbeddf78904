"""Export a config's model and checkpoint to ONNX with dynamic batch, height and width, then check
the file in ONNX Runtime against PyTorch at the export size and at a second size.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE.onnx [--backbone-only]
        [--shape H W] [--check-shape H W ...] [--atol 1e-4] [--opset 18]

mmpretrain configs export class logits, mmseg configs the segmentor's logits at the input size
(``encode_decode``), ``--backbone-only`` the backbone's maps through the config's neck (mmdet:
backbone + FPN; detectors export this way only). The graph takes a normalised image batch
``input`` (B, 3, H, W), float32: mean/std and channel order stay with the caller, as the data
preprocessor applies them. The checkpoint is loaded strictly through the safe loader.

The graph is traced at ``--shape`` (default 513x577 with a batch of 2: every stage's map odd and
larger than its windows, so that no size of the example is fixed in the graph), then run in ONNX
Runtime at that size and at each ``--check-shape`` (default 224x224 and 333x517, a batch of 1).
A file that fails or differs by more than ``--atol`` there is renamed to FILE.onnx.failed and the
tool exits with an error naming the size and the difference.
"""
import argparse
import os
import sys

import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.analysis import build_model
from groupmix_backbones.deployment import (EXPORT_SIZE, OPSET, ExportForward, OnnxMismatchError,
                                           check_onnx, export_onnx)

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
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error(f'--opset {args.opset}: the graphs need opset 17 or later '
                     f'(LayerNormalization).')
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
    for shape, error in checks:
        print(f'ONNX Runtime vs PyTorch on {"x".join(map(str, shape))}: max |difference| '
              f'{error:.2g}')
    print(f'Wrote {args.out} (dynamic batch, height and width; opset {args.opset}).')


if __name__ == '__main__':
    main()
