"""Minimal reproduction of gloo's abort at process exit, with torch only.

Each run is 2 processes under torchrun: init a gloo process group, a few all_reduces (the
gradient sync of a DDP step), then exit in one of three ways:

* ``destroy``: barrier and ``destroy_process_group()`` first (what tools/train.py and
  tools/test.py do on every exit path: ``runtime.process_group_closed_on_exit``);
* ``exit``: exit with the group still alive (every collective waited for);
* ``pending``: exit with an ``async_op`` all_reduce not waited for (an error path that leaves a
  collective in flight).

An aborted process prints ``terminate called without an active exception`` (a C++ std::thread
destroyed while still joinable during interpreter shutdown: gloo's threads outlive Python's
teardown) and dies of SIGABRT.

    python tools/analysis_tools/gloo_shutdown.py --runs 20           # every mode, 20 runs each
"""
import argparse
import os
import random
import subprocess
import sys

ABORTED = ('terminate called', 'SIGABRT', 'Aborted')
MODES = ('destroy', 'exit', 'pending')


def one_rank(mode):
    import torch
    import torch.distributed as dist
    dist.init_process_group('gloo')
    tensor = torch.ones(1 << 16)
    for _ in range(3):
        dist.all_reduce(tensor)
    work = dist.all_reduce(torch.ones(1 << 16), async_op=True)
    if mode != 'pending':
        work.wait()
    if mode == 'destroy':
        dist.barrier()
        dist.destroy_process_group()


def count_aborts(mode, runs):
    """Runs of ``mode`` whose output shows an abort, and runs that exited non-zero."""
    aborted = failed = 0
    for _ in range(runs):
        run = subprocess.run(
            [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
             f'--master_port={random.randint(20000, 60000)}', __file__, '--rank-mode', mode],
            env=dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1'),
            capture_output=True, text=True, timeout=300)
        aborted += any(word in run.stdout + run.stderr for word in ABORTED)
        failed += run.returncode != 0
    return aborted, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runs', type=int, default=20, help='runs of each mode')
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES)
    parser.add_argument('--rank-mode', choices=MODES, help=argparse.SUPPRESS)  # inside torchrun
    args = parser.parse_args(argv)
    if args.rank_mode:
        return one_rank(args.rank_mode)
    for mode in args.modes:
        aborted, failed = count_aborts(mode, args.runs)
        print(f'{mode}: {aborted} of {args.runs} runs aborted, {failed} exited non-zero',
              flush=True)


if __name__ == '__main__':
    main()
