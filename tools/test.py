"""Evaluate a checkpoint with any groupmix_backbones config (mmpretrain, mmdet or mmseg scope).
Launch several processes with ``tools/dist_test.sh``."""
import argparse
import json

from mmengine.dist import get_rank
from mmengine.runner import Runner

from groupmix_backbones import fuse_modules  # registers the backbones, safe checkpoint loading
from groupmix_backbones.runtime import (add_runner_args, keep_freed_cpu_memory, load_cfg,
                                        prepare_cfg, process_group_closed_on_exit)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--metrics-out', help='also write the metrics to this JSON file')
    parser.add_argument('--fuse', action='store_true',
                        help='fold batch norms into convolutions before testing (same outputs)')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = prepare_cfg(load_cfg(args), args.config, args.launcher, args.work_dir, command='test')
    cfg.load_from = args.checkpoint
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
