"""Evaluate a checkpoint with any groupmix_backbones config (mmpretrain, mmdet or mmseg scope).
Launch several processes with ``tools/dist_test.sh``."""
import argparse
import json
import os.path as osp
import time

from mmengine.dist import get_rank
from mmengine.runner import Runner

from groupmix_backbones import fuse_modules  # registers the backbones, safe checkpoint loading
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory
from groupmix_backbones.runtime import (add_runner_args, load_cfg, prepare_cfg,
                                        process_group_closed_on_exit)


def draw_predictions(cfg, show_dir: str):
    """Have the library's own visualization hook draw every test image into ``show_dir``
    (detection and segmentation: the ground truth beside the prediction)."""
    show_dir = osp.abspath(show_dir)
    hook = cfg.default_hooks.visualization
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    elif scope == 'mmseg':  # drawn through the visualizer's local backend, under save_dir
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = show_dir
    elif scope == 'mmpretrain':
        hook.update(enable=True, interval=1, out_dir=show_dir)
    else:
        raise ValueError(f'--show-dir: default_scope {scope!r} is not one of mmpretrain, mmdet, '
                         'mmseg.')
    # a visualizer of its own: the hooks draw with the process's latest one, and one of the
    # config's name made earlier in this process (a training run, another library) would be reused
    cfg.visualizer.name = f'{scope}-show-dir-{time.time_ns()}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--metrics-out', help='also write the metrics to this JSON file')
    parser.add_argument('--fuse', action='store_true',
                        help='fold batch norms into convolutions before testing (same outputs)')
    parser.add_argument('--show-dir', help='draw the predictions of every test image here '
                        "(the library's visualizer: boxes and masks, label maps, labels)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = prepare_cfg(load_cfg(args), args.config, args.launcher, args.work_dir, command='test')
    cfg.load_from = args.checkpoint
    if args.show_dir:
        draw_predictions(cfg, args.show_dir)
    runner = Runner.from_cfg(cfg)
    # strict: a checkpoint that does not fit the model (another arch, other heads) is an error,
    # where the Runner's own loading (load_or_resume) would only log a warning and test whatever
    # weights the model was left with
    runner.load_checkpoint(args.checkpoint, strict=True)
    if args.fuse:
        fuse_modules(runner.model)
    metrics = runner.test()
    if args.metrics_out and get_rank() == 0:
        with open(args.metrics_out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


def run(argv=None):
    """:func:`main` with the process group destroyed however it ends."""
    with process_group_closed_on_exit():
        main(argv)


if __name__ == '__main__':
    keep_freed_cpu_memory()
    run()
