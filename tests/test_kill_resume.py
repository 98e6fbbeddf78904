"""Kill at any moment, lose nothing: a 2-process run (torchrun, gloo) is SIGKILLed as a whole at
one moment after another (tests/kill_at.py), resumed with --resume after each kill, and ends
with the same weights, bit for bit, as a run never interrupted. Epoch-based classification with
persistent dataloader workers, iteration-based segmentation."""
import os
import signal
import subprocess
import sys

import pytest
from mmengine.runner import CheckpointLoader

from conftest import REPO
from test_multinode import largest_difference
from test_tasks import DEMOS, free_port, short_run_options

CLS_OPTIONS = {'train_cfg.max_epochs': 4, 'train_dataloader.batch_size': 4,  # 3 iterations an
               'train_dataloader.num_workers': 1,  # epoch on each of the 2 ranks
               'train_dataloader.persistent_workers': True}
SEG_OPTIONS = {'train_cfg.max_iters': 8, 'train_cfg.val_interval': 4,
               'train_dataloader.batch_size': 2}
# the moments, in the order a run meets them (tests/kill_at.py says what each means)
CLS_KILLS = ['epoch-end:1', 'validation:2', 'iteration:8', 'checkpoint:epoch_3.pth',
             'last-checkpoint:epoch_4.pth']
SEG_KILLS = ['iteration:3', 'validation:4', 'checkpoint:iter_6.pth', 'last-checkpoint:iter_8.pth']
# what last_checkpoint names after each kill
CLS_KEPT = ['epoch_1.pth', 'epoch_2.pth', 'epoch_2.pth', 'epoch_2.pth', 'epoch_3.pth']
SEG_KEPT = ['iter_2.pth', 'iter_4.pth', 'iter_4.pth', 'iter_6.pth']


def train_on_two_processes(config, work_dir, options, kill_at=None, resume=False):
    """tools/train.py on 2 CPU processes under torchrun; ``kill_at``: through tests/kill_at.py."""
    script = ['tests/kill_at.py', 'tools/train.py'] if kill_at else ['tools/train.py']
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
               f'--master_port={free_port()}', *script, config, '--launcher', 'pytorch',
               '--work-dir', str(work_dir), *(['--resume'] if resume else []),
               '--cfg-options', *[f'{k}={v}' for k, v in options.items()]]
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               KILL_AT=kill_at or '')
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize('task,kills,kept,last,options', [
    ('cls', CLS_KILLS, CLS_KEPT, 'epoch_4.pth', CLS_OPTIONS),
    ('seg', SEG_KILLS, SEG_KEPT, 'iter_8.pth', SEG_OPTIONS),
], ids=['cls-epochs-persistent-workers', 'seg-iterations'])
def test_killed_again_and_again_ends_as_never_killed(task, kills, kept, last, options, demo_root,
                                                     tmp_path):
    config = DEMOS['groupmixformer', task]
    options = dict(short_run_options(task, demo_root), **options,
                   **{'default_hooks.checkpoint.max_keep_ckpts': 1})
    done = train_on_two_processes(config, tmp_path / 'uninterrupted', options)
    assert done.returncode == 0, done.stderr[-3000:]

    work_dir = tmp_path / 'killed'
    for i, (moment, checkpoint) in enumerate(zip(kills, kept)):
        killed = train_on_two_processes(config, work_dir, options, kill_at=moment, resume=i > 0)
        assert killed.returncode == -signal.SIGKILL, (moment, killed.stderr[-3000:])
        named = open(work_dir / 'last_checkpoint').read()
        assert named == str(work_dir / checkpoint), moment
        CheckpointLoader.load_checkpoint(named)  # whole
    resumed = train_on_two_processes(config, work_dir, options, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    difference = largest_difference(work_dir / last, tmp_path / 'uninterrupted' / last)
    print(f'{task}: {len(kills)} kills ({", ".join(kills)}), largest weight difference '
          f'after resuming: {difference}')
    assert difference == 0
