"""Evaluate a checkpoint with any groupmix_backbones config (mmpretrain, mmdet or mmseg scope).
Launch several processes with ``tools/dist_test.sh``."""
import argparse
import json
import os

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.runtime import prepare_cfg


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go (default: work_dirs/<config name>)')
    parser.add_argument('--metrics-out', help='also write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. test_dataloader.batch_size=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    prepare_cfg(cfg, args.config, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    metrics = Runner.from_cfg(cfg).test()
    if args.metrics_out and int(os.environ.get('RANK', 0)) == 0:
        with open(args.metrics_out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
