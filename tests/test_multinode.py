"""Several nodes for real, on this machine: the classification demo as 2 nodes x 1 process
(tools/dist_train.sh with NNODES=2, NODE_RANK=0/1, MASTER_ADDR=127.0.0.1: torchrun's rendezvous,
gloo) and as the 2 tasks of a Slurm step (tools/train.py --launcher slurm under the variables
srun sets; mmengine's launcher asks ``scontrol`` for the first host) computes the same losses
and final weights as 1 node x 2 processes."""
import os
import stat
import sys

import pytest
from mmengine.runner import CheckpointLoader

from test_tasks import DEMOS, environment, run_job, scalars, short_run_options

CONFIG = DEMOS['groupmixformer', 'cls']
OPTIONS = {'train_cfg.max_epochs': 2, 'train_dataloader.batch_size': 4}


def options(demo_root):
    merged = dict(short_run_options('cls', demo_root), **OPTIONS)
    return ['--cfg-options', *[f'{k}={v}' for k, v in merged.items()]]


def largest_difference(checkpoint, reference):
    """max |a - b| over every weight and buffer of two checkpoints' state dicts."""
    a, b = (CheckpointLoader.load_checkpoint(str(c))['state_dict'] for c in (checkpoint, reference))
    assert a.keys() == b.keys()
    return max((x.double() - y.double()).abs().max().item() if x.is_floating_point()
               else float((x != y).any()) for x, y in ((a[k], b[k]) for k in a))


def losses(work_dir):
    """(iteration, loss) of every logged training step, from rank 0's scalars.json."""
    return [(line['iter'], line['loss']) for line in scalars(work_dir) if 'loss' in line]


@pytest.fixture(scope='module')
def one_node_two_processes(demo_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('one_node')
    run_job([(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work_dir),
               *options(demo_root)], environment())])
    return work_dir


def test_two_nodes_of_one_process_train_as_one_node_of_two(one_node_two_processes, demo_root,
                                                          tmp_path):
    run_job([(['bash', 'tools/dist_train.sh', CONFIG, '1', '--work-dir', str(tmp_path),
               *options(demo_root)],
              environment(NNODES=2, NODE_RANK=node, MASTER_ADDR='127.0.0.1'))
             for node in (0, 1)])
    assert losses(tmp_path) == losses(one_node_two_processes) != []
    assert largest_difference(tmp_path / 'epoch_2.pth',
                              one_node_two_processes / 'epoch_2.pth') == 0


def test_a_two_task_slurm_step_trains_as_one_node_of_two(one_node_two_processes, demo_root,
                                                         tmp_path):
    """What ``srun --ntasks=2`` starts on one node: tools/train.py --launcher slurm twice, with
    the SLURM_* variables of each task. mmengine reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
    and takes MASTER_ADDR from ``scontrol show hostname $SLURM_NODELIST``; here a stand-in
    ``scontrol`` (this machine has no Slurm) prints the node list's only host."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    scontrol = bin_dir / 'scontrol'
    scontrol.write_text('#!/bin/sh\n# scontrol show hostname NODELIST: one host per line\n'
                        'echo "$3" | tr , "\\n"\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    step = dict(SLURM_JOB_ID=4242, SLURM_STEP_ID=0, SLURM_NTASKS=2, SLURM_NPROCS=2,
                SLURM_NNODES=1, SLURM_NODEID=0, SLURM_NODELIST='localhost',
                SLURM_STEP_NODELIST='localhost', SLURM_TASKS_PER_NODE=2,
                PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    work_dir = tmp_path / 'work'
    run_job([([sys.executable, '-u', 'tools/train.py', CONFIG, f'--work-dir={work_dir}',
               '--launcher', 'slurm', *options(demo_root)],
              environment(SLURM_PROCID=task, SLURM_LOCALID=task, **step)) for task in (0, 1)])
    assert losses(work_dir) == losses(one_node_two_processes) != []
    assert largest_difference(work_dir / 'epoch_2.pth',
                              one_node_two_processes / 'epoch_2.pth') == 0
