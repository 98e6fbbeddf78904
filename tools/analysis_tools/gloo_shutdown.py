"""Minimal reproduction of gloo's abort at process exit, with torch only.

Each run is 2 processes under torchrun: init a gloo process group, a few all_reduces (the
gradient sync of a DDP step), then exit in one of these ways:

* ``destroy``: barrier and ``destroy_process_group()`` first (what tools/train.py and
  tools/test.py do on every exit path: ``runtime.process_group_closed_on_exit``);
* ``referenced``: the same, with torch._dynamo imported after the group was made (as DDP
  imports it): it keeps references to the group, so destroying it does not join gloo's threads;
* ``referenced-tool``: the same, ended as tools/train.py and tools/test.py end
  (``runtime.run_and_exit``: no finalization while gloo's threads run);
* ``exit``: exit with the group still alive (every collective waited for);
* ``pending``: exit with an ``async_op`` all_reduce not waited for (an error path that leaves a
  collective in flight).

An aborted process prints ``terminate called without an active exception`` and dies of SIGABRT:
a gloo thread still running while Python finalizes frees a finished collective's tensors, asks
for the GIL, and is ended by Python inside a C++ destructor (the stack of a core dump of the CI
failure of 2026-12-07: ``AsyncBarrierWork`` freeing its prior ``AsyncAllreduceWork``,
``decref_pyobject``, ``take_gil``, ``pthread_exit``, ``std::terminate``).

    python tools/analysis_tools/gloo_shutdown.py --runs 20           # every mode, 20 runs each
    python tools/analysis_tools/gloo_shutdown.py --runs 30 --busy 3 --modes referenced referenced-tool
"""
import argparse
import os
import random
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABORTED = ('terminate called', 'SIGABRT', 'Aborted')
MODES = ('destroy', 'referenced', 'referenced-tool', 'exit', 'pending')


def one_rank(mode):
    import torch
    import torch.distributed as dist
    dist.init_process_group('gloo')
    if mode.startswith('referenced'):
        import torch._dynamo  # noqa: F401
    tensor = torch.ones(1 << 16)
    for _ in range(3):
        dist.all_reduce(tensor)
    work = dist.all_reduce(torch.ones(1 << 16), async_op=True)
    if mode != 'pending':
        work.wait()
    if mode in ('destroy', 'referenced', 'referenced-tool'):
        dist.barrier()
        dist.destroy_process_group()


def count_aborts(mode, runs):
    """Runs of ``mode`` whose output shows an abort, and runs that exited non-zero."""
    aborted = failed = 0
    for _ in range(runs):
        run = subprocess.run(
            [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
             f'--master_port={random.randint(20000, 60000)}', __file__, '--rank-mode', mode],
            env=dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', PYTHONPATH=REPO),
            capture_output=True, text=True, timeout=300)
        aborted += any(word in run.stdout + run.stderr for word in ABORTED)
        failed += run.returncode != 0
    return aborted, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runs', type=int, default=20, help='runs of each mode')
    parser.add_argument('--modes', nargs='+', choices=MODES, default=MODES)
    parser.add_argument('--busy', type=int, default=0,
                        help='busy processes beside the runs (a loaded machine widens the race)')
    parser.add_argument('--rank-mode', choices=MODES, help=argparse.SUPPRESS)  # inside torchrun
    args = parser.parse_args(argv)
    if args.rank_mode == 'referenced-tool':
        from groupmix_backbones.runtime import run_and_exit
        return run_and_exit(one_rank, args.rank_mode)
    if args.rank_mode:
        return one_rank(args.rank_mode)
    busy = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
            for _ in range(args.busy)]
    try:
        for mode in args.modes:
            aborted, failed = count_aborts(mode, args.runs)
            print(f'{mode}: {aborted} of {args.runs} runs aborted, {failed} exited non-zero',
                  flush=True)
    finally:
        for process in busy:
            process.kill()


if __name__ == '__main__':
    main()
