"""Runs that survive the cluster: a 2-process run through tools/dist_train.sh preempted (SIGTERM
to the job's process group) at 5 moments, each stopping with a checkpoint and exit code 75 and
resumed with --resume, ends with the uninterrupted run's weights bit for bit; the same through
tools/slurm_train.sh with SIGUSR1 and a requeue (stand-in srun and scontrol); a loss made NaN
stops the run at that iteration before anything is saved; a truncated or bit-flipped newest
checkpoint is found by its checksum and resume takes the previous one."""
import contextlib
import glob
import os
import os.path as osp
import re
import shutil
import signal
import stat
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import CheckpointLoader, Runner

from conftest import REPO, load_tool, process_tree
from groupmix_backbones.engine.checksum import SUFFIX, damage, sha256_of
from groupmix_backbones.engine.stop_hook import PREEMPTED_EXIT_CODE, Preempted
from groupmix_backbones.safe_checkpoint import CorruptCheckpointError
from test_multinode import largest_difference
from test_resume import assert_resumed_exactly, train
from test_tasks import DEMOS, free_port, short_cfg, short_run_options

CONFIG = DEMOS['groupmixformer', 'cls']
OPTIONS = {'train_cfg.max_epochs': 4, 'train_dataloader.batch_size': 4,  # 3 iterations an epoch
           'train_dataloader.num_workers': 1,  # on each of the 2 ranks, a persistent worker
           'train_dataloader.persistent_workers': True,
           'default_hooks.checkpoint.max_keep_ckpts': 1}
# (moment, what last_checkpoint names after it): tests/signal_at/sitecustomize.py says what each
# moment means; each run resumes the one before
MOMENTS = [('iteration:2', r'iter_2\.pth'),  # mid-iteration, mid-epoch 1
           ('validation:1', r'iter_3\.pth'),  # the validation finishes, then it stops
           ('checkpoint:epoch_2.pth', r'iter_6\.pth'),  # epoch_2.pth is whole, it stops after
           ('epoch-start:3', r'iter_7\.pth'),  # between epochs: after the first iteration of 3
           ('loading:4', r'iter_\d+\.pth')]  # as rank 0's worker loads its 4th sample
HELPER = osp.join(REPO, 'tests', 'signal_at')


def options(demo_root, **extra):
    merged = dict(short_run_options('cls', demo_root), **OPTIONS, **extra)
    return ['--cfg-options', *[f'{k}={v}' for k, v in merged.items()]]


def job(command, signal_at='', **env):
    """Run ``command`` (a launcher script) as a job in its own process group, the group
    tests/signal_at/sitecustomize.py signals; returns (exit code, output)."""
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{HELPER}', CUDA_VISIBLE_DEVICES='',
               OMP_NUM_THREADS='1', PYTHON=sys.executable, SIGNAL_AT=signal_at, **env)
    for attempt in range(2):
        port = str(free_port())
        process = subprocess.Popen(
            ['bash', '-c', 'export SIGNAL_GROUP=$$; exec "$@"', 'job', *command], cwd=REPO,
            env=dict(env, PORT=port, MASTER_PORT=port), start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            output = process.communicate(timeout=600)[0]
        finally:  # whatever is left of the job (torchrun and the ranks have their own sessions)
            for pid in process_tree(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if 'EADDRINUSE' not in output:
            break
    return process.returncode, output


def dist_train(work_dir, demo_root, *args, signal_at=''):
    return job(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work_dir), *args,
                *options(demo_root)], signal_at=signal_at)


def no_nan_on_disk(work_dir):
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        state = CheckpointLoader.load_checkpoint(path)['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path


@pytest.fixture(scope='module')
def uninterrupted(demo_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    code, output = dist_train(work_dir, demo_root)
    assert code == 0, output[-5000:]
    return work_dir


def test_preempted_at_five_moments_ends_as_never_preempted(uninterrupted, demo_root, tmp_path):
    codes = []
    for i, (moment, kept) in enumerate(MOMENTS):
        code, output = dist_train(tmp_path, demo_root, *(['--resume'] if i else []),
                                  signal_at=moment)
        codes.append(code)
        assert code == PREEMPTED_EXIT_CODE, (moment, output[-5000:])
        named = open(tmp_path / 'last_checkpoint').read()
        assert re.fullmatch(re.escape(str(tmp_path) + os.sep) + kept, named), (moment, named)
        assert damage(named) is None and osp.isfile(named + SUFFIX)
        CheckpointLoader.load_checkpoint(named)  # whole
        assert not glob.glob(str(tmp_path / '*.incomplete')), moment
    code, output = dist_train(tmp_path, demo_root, '--resume')
    assert code == 0, output[-5000:]
    difference = largest_difference(tmp_path / 'epoch_4.pth', uninterrupted / 'epoch_4.pth')
    print(f'preempted at {", ".join(m for m, _ in MOMENTS)}: exit codes {codes}, largest '
          f'weight difference after resuming: {difference}')
    assert difference == 0
    # each stop checkpoint went once a later checkpoint was written (max_keep_ckpts=1)
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.pth*'))) == [
        'epoch_4.pth', 'epoch_4.pth.sha256']


def write_script(folder, name, text):
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


# stand-ins for Slurm's commands on this machine: srun starts --ntasks tasks here with each
# task's SLURM_* variables and passes signals on to them (as srun does); scontrol prints the
# node list's hosts and records a requeue
SRUN = r'''#!/usr/bin/env bash
while [[ $1 == -* ]]; do
    case $1 in
        -p) shift ;;
        --ntasks=*) NTASKS=${1#--ntasks=} ;;
        --signal=*) echo "$1" >> "$SLURM_LOG" ;;
    esac
    shift
done
PIDS=()
for ((TASK = 0; TASK < NTASKS; TASK++)); do
    SLURM_PROCID=$TASK SLURM_LOCALID=$TASK SLURM_NTASKS=$NTASKS SLURM_NPROCS=$NTASKS "$@" &
    PIDS+=($!)
done
trap 'kill -s USR1 "${PIDS[@]}"' USR1
trap 'kill -s TERM "${PIDS[@]}"' TERM
CODE=0
for PID in "${PIDS[@]}"; do
    while kill -0 "$PID" 2>/dev/null; do wait "$PID"; done
    wait "$PID"; STATUS=$?
    (( STATUS > CODE )) && CODE=$STATUS
done
exit $CODE
'''
SCONTROL = r'''#!/bin/sh
case $1 in
    show) echo "$3" | tr , "\n" ;;
    requeue) echo "requeue $2" >> "$SLURM_LOG" ;;
esac
'''


def test_slurm_job_requeued_on_sigusr1_resumes_by_itself(uninterrupted, demo_root, tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    write_script(bin_dir, 'srun', SRUN)
    write_script(bin_dir, 'scontrol', SCONTROL)
    log, work_dir = tmp_path / 'slurm.log', tmp_path / 'work'
    env = dict(SLURM_JOB_ID='4242', SLURM_NNODES='1', SLURM_NODEID='0', SLURM_NODELIST='localhost',
               SLURM_STEP_NODELIST='localhost', SLURM_TASKS_PER_NODE='2', SLURM_LOG=str(log),
               PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', GPUS='2', GPUS_PER_NODE='2',
               SIGNAL_SENT='SIGUSR1')
    command = ['bash', 'tools/slurm_train.sh', 'partition', 'job', CONFIG, str(work_dir),
               *options(demo_root)]
    code, output = job(command, signal_at='iteration:5', **env)  # Slurm's notice to the job
    assert code == PREEMPTED_EXIT_CODE, output[-5000:]
    assert open(log).read().split('\n')[:2] == ['--signal=USR1@300', 'requeue 4242']
    assert open(work_dir / 'last_checkpoint').read() == str(work_dir / 'iter_5.pth')
    code, output = job(command, SLURM_RESTART_COUNT='1', **env)  # the requeued job
    assert code == 0, output[-5000:]
    assert 'resumed epoch: 1, iter: 5' in output
    assert largest_difference(work_dir / 'epoch_4.pth', uninterrupted / 'epoch_4.pth') == 0


def test_a_nan_loss_stops_the_run_before_anything_is_saved(demo_root, tmp_path):
    code, output = dist_train(tmp_path, demo_root, signal_at='nan-loss:5')  # rank 1, epoch 2
    assert code != 0
    message = re.search(r'NonFiniteLossError: (.*)', output)
    assert message, output[-5000:]
    assert 'Training stopped at iteration 5: loss terms not finite on rank 1: loss' in message[1]
    assert re.search(r'\(batch: [^)]*imagenet/train/\w+/\w+\.(png|jpg|JPEG)', message[1])
    assert str(tmp_path / 'epoch_1.pth') in message[1]
    assert open(tmp_path / 'last_checkpoint').read() == str(tmp_path / 'epoch_1.pth')
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.pth'))) == ['epoch_1.pth']
    assert damage(str(tmp_path / 'epoch_1.pth')) is None
    no_nan_on_disk(tmp_path)


def test_a_damaged_newest_checkpoint_is_skipped_on_resume(demo_root, tmp_path, capsys):
    """Truncated, then bit-flipped: --resume names the damaged file and resumes from the
    previous one; tools/misc/check_checkpoint.py finds it; load_from refuses it."""
    train_tool = load_tool('tools/train.py')
    check = load_tool('tools/misc/check_checkpoint.py')
    short = dict(short_run_options('cls', demo_root), **{
        'default_hooks.checkpoint.max_keep_ckpts': 2, 'train_dataloader.batch_size': 8})

    def run(work_dir, epochs, *args):
        train_tool.main([CONFIG, '--work-dir', str(work_dir), *args, '--cfg-options', *[
            f'{k}={v}' for k, v in dict(short, **{'train_cfg.max_epochs': epochs}).items()]])

    trained = tmp_path / 'trained'
    run(trained, 2)
    assert open(trained / 'epoch_2.pth.sha256').read() == (
        f'{sha256_of(str(trained / "epoch_2.pth"))}  epoch_2.pth\n')
    assert check.main([str(trained)]) == 0
    original = open(trained / 'epoch_2.pth', 'rb').read()
    for kind, damaged in [('truncated', original[:len(original) // 2]),
                          ('bit-flipped', original[:1000] + bytes([original[1000] ^ 1])
                           + original[1001:])]:
        work_dir = tmp_path / kind
        shutil.copytree(trained, work_dir)
        first, newest = str(work_dir / 'epoch_1.pth'), str(work_dir / 'epoch_2.pth')
        with open(work_dir / 'last_checkpoint', 'w') as f:
            f.write(newest)
        with open(newest, 'wb') as f:
            f.write(damaged)
        capsys.readouterr()
        assert check.main([str(work_dir)]) == 1
        assert f'{newest}: DAMAGED' in capsys.readouterr().out
        with pytest.raises(CorruptCheckpointError, match=re.escape(f'{newest} is damaged')):
            run(work_dir, 2, '--cfg-options', f'load_from={newest}')
        run(work_dir, 3, '--resume')
        out = ''.join(capsys.readouterr())
        assert f'Checkpoint {newest} is damaged: its sha256' in out, out[-3000:]
        assert f'Resuming from {first}, the newest intact checkpoint, instead' in out
        assert CheckpointLoader.load_checkpoint(str(work_dir / 'epoch_3.pth'))['meta']['epoch'] == 3
        assert check.main([str(work_dir)]) == 0


class SignalAt(Hook):
    """Sends ``signal.SIGTERM`` to this process before training iteration ``iteration``."""

    def __init__(self, iteration):
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize('demo,workers,iteration,options', [
    (('groupmixformer', 'cls'), 0, 9, {'train_cfg.max_epochs': 2,  # 6 iterations an epoch
                                       'train_dataloader.batch_size': 4}),
    (('groupmixformer', 'seg'), 1, 3, {'train_cfg.max_iters': 4, 'train_dataloader.batch_size': 2,
                                       'train_dataloader.persistent_workers': True}),
], ids=['cls-epochs-no-workers', 'seg-iterations-persistent-worker'])
def test_stopped_in_process_resumes_exactly(demo, workers, iteration, options, demo_root,
                                            tmp_path):
    """One process: SIGTERM in iteration ``iteration``; the resumed run logs the same losses as
    an uninterrupted one (mid-epoch without workers: the skipped batches draw this process's
    augmentation randomness; iteration-based with a persistent worker started with the loop)."""
    options = dict(options, **{'train_dataloader.num_workers': workers})
    uninterrupted = train(demo, demo_root, tmp_path / 'uninterrupted', **options)
    cfg = short_cfg(demo, demo_root, tmp_path / 'stopped')
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(SignalAt(iteration))
    with pytest.raises(Preempted, match=f'Preempted after iteration {iteration}'):
        runner.train()
    runner.call_hook('after_run')  # the tools exit here; this process goes on
    assert open(tmp_path / 'stopped' / 'last_checkpoint').read() == str(
        tmp_path / 'stopped' / f'iter_{iteration}.pth')
    resumed = train(demo, demo_root, tmp_path / 'stopped', resume=True, **options)
    assert_resumed_exactly(resumed, uninterrupted)
