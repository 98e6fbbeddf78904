"""Train any groupmix_backbones config: its ``default_scope`` (mmpretrain, mmdet or mmseg) picks the
library. Launch several processes with ``tools/dist_train.sh``."""
import argparse
import sys

from mmengine.runner import Runner

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.engine.stop_hook import Preempted, write_exit_status
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory
from groupmix_backbones.runtime import (add_runner_args, check_pretrained_paths, load_cfg,
                                        prepare_cfg, process_group_closed_on_exit,
                                        run_and_exit)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or from the newest intact one in the work '
                             "dir (last_checkpoint's unless its checksum fails)")
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--compile', nargs='?', const='inductor', metavar='BACKEND',
                        help="torch.compile the training step (mmengine's `compile` option; "
                             'backend inductor unless given)')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_cfg(args)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.resume == 'auto':  # the newest intact checkpoint of the work dir (prepare_cfg)
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    prepare_cfg(cfg, args.config, args.launcher, args.work_dir, command='train')
    check_pretrained_paths(cfg.model)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.compile:
        cfg.compile = dict(backend=args.compile)
    Runner.from_cfg(cfg).train()


def run(argv=None):
    """:func:`main` with the process group destroyed however it ends; a preempted run (a
    checkpoint saved, :class:`~groupmix_backbones.engine.GracefulStopHook`) exits with
    ``PREEMPTED_EXIT_CODE`` (75)."""
    try:
        with process_group_closed_on_exit():
            main(argv)
    except Preempted:
        write_exit_status(Preempted.exit_code)
        sys.exit(Preempted.exit_code)


if __name__ == '__main__':
    keep_freed_cpu_memory()
    run_and_exit(run)
