"""Run a config (and optionally a checkpoint) on images and draw its predictions.

    python tools/infer.py CONFIG IMAGE [IMAGE ...] [--checkpoint CKPT] [--out-dir OUT]

The config's ``default_scope`` picks mmpretrain's ImageClassificationInferencer, mmdet's
DetInferencer or mmseg's MMSegInferencer; drawings go to OUT/vis/.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory


def build_inferencer(config, checkpoint=None, device='cpu'):
    """The task's own inferencer for ``config`` (a path), loaded with ``checkpoint`` if given."""
    scope = Config.fromfile(config).get('default_scope')
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        return DetInferencer(model=config, weights=checkpoint, device=device, show_progress=False)
    if scope == 'mmseg':
        from mmseg.apis import MMSegInferencer
        return MMSegInferencer(model=config, weights=checkpoint, device=device)
    if scope == 'mmpretrain':
        from mmpretrain.apis import ImageClassificationInferencer
        return ImageClassificationInferencer(model=config, pretrained=checkpoint or False,
                                             device=device)
    raise ValueError(f'{config}: default_scope {scope!r} is not one of mmpretrain, mmdet, mmseg.')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--checkpoint', help='trained checkpoint (random weights without one)')
    parser.add_argument('--out-dir', default='work_dirs/infer', help='where drawings go')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    inferencer = build_inferencer(args.config, args.checkpoint, args.device)
    scope = Config.fromfile(args.config).get('default_scope')
    # mmpretrain makes show_dir but not its parents
    os.makedirs(args.out_dir, exist_ok=True)
    kwargs = dict(show_dir=osp.join(args.out_dir, 'vis')) if scope == 'mmpretrain' else dict(
        out_dir=args.out_dir)
    inferencer(args.images, **kwargs)
    print(f'Drew predictions of {len(args.images)} image(s) under {args.out_dir}/vis')


if __name__ == '__main__':
    keep_freed_cpu_memory()
    main()
