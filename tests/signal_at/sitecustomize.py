"""Test helper (tests/test_preemption.py puts this folder on PYTHONPATH, so that Python imports it
at start-up in every process of a run). In a training rank, at the moment SIGNAL_AT names, rank 0
sends SIGNAL_SENT (default SIGTERM) to the process group SIGNAL_GROUP (the job, as a scheduler does)
and waits until its own GracefulStopHook has received it (through the launcher). Moments
(1-based):

* ``iteration:N``     in training iteration N (after its batch is loaded, before its forward)
* ``validation:N``    in the validation after epoch N, after its first batch
* ``checkpoint:NAME`` while NAME is being written (half of its bytes on disk)
* ``epoch-start:N``   between epochs: before epoch N's batches are loaded
* ``loading:N``       from rank 0's dataloader worker, while it loads its N-th sample of this run
* ``nan-loss:N``      no signal: rank 1's loss of iteration N is made NaN (the head's loss weight)

Once it has sent the signal, it sends it again while the stop checkpoint (``iter_*.pth``) is
written: a second signal mid-write.
"""
import os
import signal
import time

MOMENT, _, WHEN = os.environ.get('SIGNAL_AT', '').partition(':')
RANK = os.environ.get('RANK', os.environ.get('SLURM_PROCID'))  # torchrun's or srun's

if MOMENT and RANK is not None:
    from mmengine.dataset import BaseDataset
    from mmengine.fileio import LocalBackend
    from mmengine.runner import Runner
    from torch.utils.data import get_worker_info

    SIGNAL = signal.Signals[os.environ.get('SIGNAL_SENT', 'SIGTERM')]
    sent = []

    def send(runner=None):
        os.killpg(int(os.environ['SIGNAL_GROUP']), SIGNAL)
        sent.append(time.time())
        hooks = [h for h in runner.hooks if type(h).__name__ == 'GracefulStopHook'] if runner else []
        while hooks and hooks[0]._received is None and time.time() - sent[-1] < 60:
            time.sleep(0.01)
        if hooks and hooks[0]._received is None:
            raise RuntimeError('the signal did not reach rank 0 in 60 s')

    call_hook = Runner.call_hook

    def call_hook_and_signal(self, fn_name, **kwargs):
        if (MOMENT in ('iteration', 'nan-loss') and fn_name == 'before_train_iter'
                and self.iter + 1 == int(WHEN)):
            if MOMENT == 'iteration' and RANK == '0':
                send(self)
            if MOMENT == 'nan-loss' and RANK == '1':
                model = getattr(self.model, 'module', self.model)
                model.head.loss_module.loss_weight = float('nan')
        if (MOMENT == 'epoch-start' and fn_name == 'before_train_epoch' and RANK == '0'
                and self.epoch + 1 == int(WHEN)):
            send(self)
        call_hook(self, fn_name, **kwargs)
        if (MOMENT == 'validation' and fn_name == 'after_val_iter' and RANK == '0'
                and kwargs['batch_idx'] == 0 and self.epoch == int(WHEN)):
            send(self)

    put = LocalBackend.put

    def put_and_signal(self, obj, filepath):
        name = os.path.basename(str(filepath))
        if name.endswith('.incomplete') and (
                (MOMENT == 'checkpoint' and name == WHEN + '.incomplete')
                or (sent and name.startswith('iter_'))):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
            send()
            time.sleep(1)  # the signal arrives while the file is half written
        put(self, obj, filepath)

    getitem = BaseDataset.__getitem__
    loaded = []

    def getitem_and_signal(self, idx):
        if MOMENT == 'loading' and RANK == '0' and get_worker_info() is not None:
            loaded.append(idx)
            if len(loaded) == int(WHEN):
                os.killpg(int(os.environ['SIGNAL_GROUP']), SIGNAL)
                time.sleep(1)  # still loading when the signal reaches this worker
        return getitem(self, idx)

    Runner.call_hook = call_hook_and_signal
    LocalBackend.put = put_and_signal
    BaseDataset.__getitem__ = getitem_and_signal
