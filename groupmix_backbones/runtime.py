"""What the tools do to any config before building a Runner: work dir, checks of the data the
command reads (paths, then :mod:`.data_checks`), resumable checkpoints, BatchNorm statistics shared
by the processes of a distributed run, and the CPU fallbacks (SyncBN -> BN, gloo instead of NCCL)
so that the same configs run without a GPU."""
import argparse
import contextlib
import gc
import logging
import os
import os.path as osp
import sys

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction

from .data_checks import check_datasets, leaf_datasets
from .policy import cuda_device_selection_skipped

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
VALIDATION = ('val_cfg', 'val_dataloader', 'val_evaluator')


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


def used_dataloaders(cfg: Config, command: str):
    """The dataloaders that ``command`` ('train' or 'test') builds from ``cfg``: a Runner validates
    while training only when ``val_cfg``, ``val_dataloader`` and ``val_evaluator`` are all set."""
    if command == 'test':
        return ('test_dataloader', )
    if command != 'train':
        raise ValueError(f'command must be "train" or "test", not {command!r}')
    validates = all(cfg.get(key) is not None for key in VALIDATION)
    return ('train_dataloader', 'val_dataloader') if validates else ('train_dataloader', )


def dataset_paths(dataset):
    """The local folders and files a dataset config reads: its data root, annotation file and data
    prefixes (inside wrappers such as RepeatDataset and ConcatDataset)."""
    for leaf in leaf_datasets(dataset):
        root = leaf.get('data_root') or ''
        prefixes = leaf.get('data_prefix') or {}
        relative = [leaf.get('ann_file'),
                    *(prefixes.values() if isinstance(prefixes, dict) else [prefixes])]
        for path in [root] + [osp.join(root, path) for path in relative if path]:
            if path and '://' not in path:
                yield path


def check_dataset_paths(cfg: Config, dataloaders=DATALOADERS):
    """Raise a FileNotFoundError naming the first missing dataset folder or file of
    ``dataloaders`` and how to fix it."""
    for loader in dataloaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        for path in dataset_paths(dataset or {}):
            if not osp.exists(path):
                skip = (', train without validation (--no-validate)'
                        if loader == 'val_dataloader' else '')
                raise FileNotFoundError(
                    f'{loader}: dataset path {path!r} does not exist ({dataset.get("type")}). '
                    'Prepare the dataset there in its standard layout, point the config at it '
                    f'with --cfg-options {loader}.dataset.data_root=PATH{skip}, or use a *demo* '
                    'config after `python tools/make_demo_data.py`.')


def use_resumable_checkpoints(cfg: Config):
    """Save checkpoints with :class:`~groupmix_backbones.engine.ResumableCheckpointHook` (atomic,
    exact to resume) where the config asks for mmengine's CheckpointHook or names none."""
    hooks = cfg.setdefault('default_hooks', {})
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(type='CheckpointHook', interval=1)  # mmengine's default
    if hooks['checkpoint'] is not None and hooks['checkpoint'].get('type') == 'CheckpointHook':
        hooks['checkpoint']['type'] = 'ResumableCheckpointHook'


def stop_gracefully(cfg: Config):
    """Stop on a preemption signal with a checkpoint, and at the first non-finite loss before
    anything is saved (:class:`~groupmix_backbones.engine.GracefulStopHook`); epoch-based runs
    resume inside an epoch (:class:`~groupmix_backbones.engine.ResumableEpochBasedTrainLoop`)."""
    add_hook(cfg, dict(type='GracefulStopHook'))
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') == 'EpochBasedTrainLoop' or ('type' not in loop and loop.get('by_epoch')):
        cfg.train_cfg = dict({k: v for k, v in loop.items() if k != 'by_epoch'},
                             type='ResumableEpochBasedTrainLoop')


def take_intact_checkpoint(cfg: Config):
    """``resume`` without a file: the newest intact checkpoint of the work dir (the one
    ``last_checkpoint`` names unless it is damaged); a local ``load_from``: verified against its
    checksum (:mod:`~groupmix_backbones.engine.checksum`)."""
    from .engine.checksum import newest_intact_checkpoint, verify_checkpoint
    if cfg.get('resume') and not cfg.get('load_from'):
        cfg.load_from = newest_intact_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
    elif isinstance(cfg.get('load_from'), str) and '://' not in cfg.load_from:
        verify_checkpoint(cfg.load_from)


def add_hook(cfg: Config, hook: dict):
    """Append ``hook`` to the config's custom hooks unless a hook of its type is there."""
    hooks = list(cfg.get('custom_hooks') or [])  # configs may set None
    if not any(h.get('type') == hook['type'] for h in hooks):
        cfg.custom_hooks = hooks + [hook]


def check_pretrained_paths(node, where='model'):
    """Raise a FileNotFoundError for a missing local ``Pretrained`` checkpoint below ``node``,
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


def prepare_cfg(cfg: Config, config_path: str, launcher: str = 'none', work_dir=None,
                command: str = 'train') -> Config:
    """Fill in the work dir and launcher, check the data that ``command`` ('train' or 'test')
    reads, save resumable checkpoints, stop training gracefully, load only intact checkpoints and
    adapt the config to a CPU host."""
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(config_path))[0])
    check_dataset_paths(cfg, used_dataloaders(cfg, command))
    check_datasets(cfg, used_dataloaders(cfg, command))
    use_resumable_checkpoints(cfg)
    if command == 'train':
        stop_gracefully(cfg)
    take_intact_checkpoint(cfg)
    if launcher != 'none':  # plain BatchNorm (SyncBN on a CPU host, too) learns its statistics
        add_hook(cfg, dict(type='NormStatsSyncHook'))  # per process: share them
    if cfg.get('default_scope') == 'mmseg':  # label maps are only decoded as they are read
        add_hook(cfg, dict(type='SegLabelCheckHook'))
    if not torch.cuda.is_available():
        replace_sync_bn(cfg.model)
        if launcher != 'none':
            cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
            cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                         broadcast_buffers=False,
                                         find_unused_parameters=cfg.get('find_unused_parameters',
                                                                        False))
            init_cpu_process_group(launcher)
    return cfg


def close_process_group(wait_for_others: bool = True):
    """Destroy the process group before exit: gloo's threads left to the interpreter's shutdown can
    abort the process ("terminate called without an active exception") after a finished run.
    Destroying it joins gloo's threads only when nothing else references the group (torch._dynamo,
    imported after it by DDP, does): :func:`run_and_exit` ends a process whose threads remain.
    ``wait_for_others``: after a barrier (a finished run; a failed one must not wait for ranks
    that may be blocked in a collective)."""
    if dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group_closed_on_exit():
    """The tools' main body: the process group is destroyed however it ends (after a barrier
    only if it ended without an error)."""
    try:
        yield
    except BaseException:
        close_process_group(wait_for_others=False)
        raise
    close_process_group()


def gloo_threads_alive() -> bool:
    """Whether this process still runs gloo's worker threads (Linux names them
    ``pt_gloo_runloop``; False where ``/proc`` cannot tell)."""
    names = []
    for task in os.listdir('/proc/self/task') if osp.isdir('/proc/self/task') else ():
        try:
            with open(f'/proc/self/task/{task}/comm') as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return 'pt_gloo_runloop' in names


def run_and_exit(run, argv=None):
    """A tool's entry: call ``run(argv)`` and exit with its outcome (0; a ``SystemExit``'s code;
    after an error's traceback 1, 130 for Ctrl-C). While gloo's threads still run (a CPU
    process group that destroying could not free, :func:`close_process_group`), the process
    exits without Python's finalization, once garbage is collected (DataLoader workers stop) and
    logs and output are flushed: such a thread, freeing a finished collective's tensors, needs
    the GIL, and one that asks for it while Python finalizes is ended inside a C++ destructor,
    which aborts the process (SIGABRT, "terminate called without an active exception")."""
    try:
        run(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code
    except BaseException as error:  # noqa: B902 (reported as the interpreter would)
        sys.excepthook(type(error), error, error.__traceback__)
        code = 130 if isinstance(error, KeyboardInterrupt) else 1
    if code is not None and not isinstance(code, int):  # sys.exit('message')
        print(code, file=sys.stderr)
        code = 1
    code = code or 0
    if not gloo_threads_alive():
        sys.exit(code)
    gc.collect()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def init_cpu_process_group(launcher: str):
    """mmengine's launchers (pytorch: torchrun's RANK etc.; slurm: SLURM_PROCID, SLURM_NTASKS,
    SLURM_NODELIST through ``scontrol``) end in ``torch.cuda.set_device``, which fails without a
    GPU: run them with gloo and without selecting a device."""
    if dist.is_initialized():
        return
    from mmengine.dist import init_dist
    with cuda_device_selection_skipped():
        init_dist(launcher, backend='gloo')


def add_runner_args(parser: argparse.ArgumentParser):
    """The options tools/train.py and tools/test.py share."""
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=12')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_cfg(args: argparse.Namespace) -> Config:
    """The config of ``args.config`` with ``--cfg-options`` merged in."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg
