"""What the tools do to any config before building a Runner: work dir, dataset checks, and the
CPU fallbacks (SyncBN -> BN, gloo instead of NCCL) so that the same configs run without a GPU."""
import argparse
import os
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def iter_dicts(node, where='model'):
    """Yield ``(key path, dict)`` for every dict in the config tree ``node``, ``node`` included."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from iter_dicts(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_dicts(value, f'{where}.{i}')


def replace_sync_bn(node):
    """Turn every ``type='SyncBN'`` norm config below ``node`` into plain BatchNorm, in place."""
    for _, cfg in iter_dicts(node):
        if cfg.get('type') in ('SyncBN', 'MMSyncBN'):
            cfg['type'] = 'BN'


def check_dataset_paths(cfg: Config):
    """Raise a FileNotFoundError naming the missing dataset folder or file and how to fix it."""
    for loader in DATALOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset')
        while dataset is not None and 'dataset' in dataset:  # wrappers such as RepeatDataset
            dataset = dataset['dataset']
        if not dataset:
            continue
        root = dataset.get('data_root', '')
        paths = [root] if root else []
        ann_file = dataset.get('ann_file')
        if ann_file:
            paths.append(osp.join(root, ann_file))
        for path in paths:
            if not osp.exists(path):
                raise FileNotFoundError(
                    f'{loader}: dataset path {path!r} does not exist ({dataset.get("type")}). '
                    f'Prepare the dataset there in its standard layout, point the config at it with '
                    f'--cfg-options {loader}.dataset.data_root=PATH, or use a *demo* config after '
                    f'`python tools/make_demo_data.py`.')


def check_pretrained_paths(node, where='model'):
    """Raise a FileNotFoundError for a local ``Pretrained`` checkpoint below ``node`` that is missing,
    before a Runner spends minutes building datasets (mmengine would only fail in init_weights)."""
    for path, cfg in iter_dicts(node, where):
        checkpoint = cfg.get('checkpoint')
        if (cfg.get('type') == 'Pretrained' and isinstance(checkpoint, str)
                and '://' not in checkpoint and not osp.exists(checkpoint)):
            raise FileNotFoundError(
                f'{path}: pretrained checkpoint {checkpoint!r} does not exist. Make it as the '
                f'config\'s comment says (a converter in tools/model_converters/ for official '
                f'weights, the classification demo for the demo configs), point at it with '
                f'--cfg-options {path}.checkpoint=PATH, or start from random weights with '
                f'--cfg-options {path}=None.')


def prepare_cfg(cfg: Config, config_path: str, launcher: str = 'none', work_dir=None) -> Config:
    """Fill in the work dir and launcher, check data paths and adapt the config to a CPU host."""
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    check_dataset_paths(cfg)
    if not torch.cuda.is_available():
        replace_sync_bn(cfg.model)
        if launcher != 'none':
            cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False,
                                         find_unused_parameters=cfg.get('find_unused_parameters',
                                                                        False))
            init_cpu_process_group()
    return cfg


def close_process_group():
    """Destroy the process group before exit: gloo's threads left to the interpreter's shutdown can
    abort the process ("terminate called without an active exception") after a finished run."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def init_cpu_process_group():
    """mmengine's launcher calls ``torch.cuda.set_device``; on a CPU host start gloo ourselves."""
    if not dist.is_initialized() and 'RANK' in os.environ:
        dist.init_process_group(backend='gloo')


def add_runner_args(parser: argparse.ArgumentParser):
    """The options tools/train.py and tools/test.py share."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=12')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_cfg(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with ``--cfg-options`` merged, prepared by :func:`prepare_cfg`."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return prepare_cfg(cfg, args.config, args.launcher, args.work_dir)
