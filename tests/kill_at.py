"""Test helper, the script torchrun starts on each rank: runs ``argv[1:]`` (tools/train.py ...)
and, at the moment named by the environment variable KILL_AT, SIGKILLs the whole run at once
(torchrun, both ranks and their dataloader workers: a lost node), from rank 0. Moments
(1-based epochs):

* ``iteration:N``       after the N-th training iteration's hooks (between iterations)
* ``validation:N``      in the validation after epoch N (iteration N for iteration-based loops),
                        after its first batch
* ``epoch-end:N``       right after epoch N, its checkpoint saved
* ``checkpoint:NAME``   while NAME is being written (half of its bytes on disk)
* ``last-checkpoint:NAME``  ``last_checkpoint`` written in full to its temporary file, naming
                        NAME, not yet renamed into place
"""
import os
import runpy
import signal
import sys

from mmengine.fileio import LocalBackend
from mmengine.runner import IterBasedTrainLoop, Runner

import groupmix_backbones.engine.checkpoint_hook as checkpoint_hook
from conftest import process_tree

MOMENT, _, WHEN = os.environ['KILL_AT'].partition(':')
# rank 0 kills: it is the one that writes checkpoints (another rank reaching a moment first would
# kill rank 0 before its checkpoint is on disk)
KILLER = os.environ.get('RANK') == '0'


def kill_the_run():
    """SIGKILL torchrun (this process's parent) and every process below it, this one last."""
    for pid in sorted(process_tree(os.getppid()), key=lambda p: p == os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


call_hook = Runner.call_hook


def call_hook_and_kill(self, fn_name, **kwargs):
    call_hook(self, fn_name, **kwargs)
    if MOMENT == 'iteration' and fn_name == 'after_train_iter':
        due = self.iter + 1 == int(WHEN)
    elif MOMENT == 'validation' and fn_name == 'after_val_iter' and kwargs['batch_idx'] == 0:
        by_epoch = not isinstance(self.train_loop, IterBasedTrainLoop)
        due = (self.epoch if by_epoch else self.iter) == int(WHEN)
    elif MOMENT == 'epoch-end' and fn_name == 'after_train_epoch':
        due = self.epoch + 1 == int(WHEN)
    else:
        due = False
    if due and KILLER:
        kill_the_run()


put = LocalBackend.put


def put_half_and_kill(self, obj, filepath):
    name = os.path.basename(str(filepath))
    if MOMENT == 'checkpoint' and name == WHEN + checkpoint_hook.INCOMPLETE:
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
        kill_the_run()
    put(self, obj, filepath)


replace_durably = checkpoint_hook.replace_durably


def kill_before_renaming_last_checkpoint(incomplete, path):
    if (MOMENT == 'last-checkpoint' and os.path.basename(path) == 'last_checkpoint'
            and open(incomplete).read().endswith(os.sep + WHEN)):
        kill_the_run()
    replace_durably(incomplete, path)


Runner.call_hook = call_hook_and_kill
LocalBackend.put = put_half_and_kill
checkpoint_hook.replace_durably = kill_before_renaming_last_checkpoint
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
