"""Stopping a run where nothing is lost and nothing poisoned is kept: on a preemption signal, at
the next iteration boundary with a checkpoint; at the first non-finite loss, before anything is
saved."""
import os
import signal
import threading

import torch
from mmengine.dist import all_gather_object, all_reduce, barrier, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from .checkpoint_hook import ResumableCheckpointHook

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): temporary failure, run it again
EXIT_STATUS_FILE = 'GROUPMIX_EXIT_STATUS_FILE'  # where tools/dist_run.sh learns the ranks' code


class Preempted(Exception):
    """The run stopped on a preemption signal after writing a checkpoint to resume from."""
    exit_code = PREEMPTED_EXIT_CODE


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite; the run stopped before saving anything from it."""


def batch_files(data_batch):
    """The image (and label map) files of a batch, as its data samples name them."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    files = []
    for sample in samples or []:
        meta = getattr(sample, 'metainfo', sample if isinstance(sample, dict) else {})
        files += [meta[key] for key in ('img_path', 'seg_map_path') if meta.get(key)]
    return files


# Preemption signals that processes forked from this one (dataloader workers) ignore: a
# scheduler signals every process of a job, and a worker would die of it (or of torch's SIGTERM
# handler) and fail the iteration its process is about to finish. Set while a
# GracefulStopHook's run is alive. Around each fork they are blocked, so that none arrives in the
# child before it ignores them.
_PROTECTED = set()


def _block_before_fork():
    if _PROTECTED:
        signal.pthread_sigmask(signal.SIG_BLOCK, _PROTECTED)


def _unblock_after_fork():
    if _PROTECTED:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PROTECTED)


def _ignore_in_child():
    """In a forked child: ignore the protected signals, except SIGTERM from the parent (its
    loader shutting it down), which still ends it, as torch's handler does."""
    for number in _PROTECTED - {signal.SIGTERM}:
        signal.signal(number, signal.SIG_IGN)
    if signal.SIGTERM in _PROTECTED:  # stays blocked: taken by the thread, whatever the handler
        threading.Thread(target=_exit_on_sigterm_from, args=(os.getppid(), ), daemon=True,
                         name='sigterm').start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PROTECTED - {signal.SIGTERM})


def _exit_on_sigterm_from(parent):
    while signal.sigwaitinfo([signal.SIGTERM]).si_pid != parent:
        pass
    os._exit(0)


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(before=_block_before_fork, after_in_parent=_unblock_after_fork,
                        after_in_child=_ignore_in_child)


@HOOKS.register_module()
class GracefulStopHook(Hook):
    """Stops training cleanly, checking once per iteration with one ``all_reduce`` on all ranks.

    * **Preemption**: on any of ``signals`` (a scheduler's notice before it kills the job),
      every rank finishes its current iteration (or the validation under way), rank 0 writes
      ``iter_N.pth`` and ``last_checkpoint`` (:meth:`ResumableCheckpointHook.save_interrupted`)
      and the run raises :class:`Preempted` (``tools/train.py`` exits with
      :data:`PREEMPTED_EXIT_CODE`). ``--resume`` continues exactly, inside an epoch too
      (:class:`ResumableEpochBasedTrainLoop`). More signals while stopping change nothing.
      Processes forked during the run (dataloader workers) ignore these signals.
    * **Non-finite losses** (``check_finite``): the first iteration whose loss terms are not all
      finite on some rank stops the run with :class:`NonFiniteLossError` naming the iteration,
      the terms, the ranks and their batches' files, before any hook saves that state (this
      hook runs after the parameter scheduler and before the checkpoint hook). A step that
      AMP's GradScaler skips (gradients overflowed, loss finite) is no error.
    """
    priority = 80  # after ParamSchedulerHook (LOW, 70), before CheckpointHook (VERY_LOW, 90)

    def __init__(self, signals=('SIGTERM', 'SIGUSR1'), check_finite=True):
        self.signals = [signal.Signals[s] if isinstance(s, str) else signal.Signals(s)
                        for s in signals]
        self.check_finite = check_finite
        self._received = None
        self._previous_handlers = {}
        self._training = False
        _PROTECTED.clear()  # workers may start with the loops, before the run: from now on
        if hasattr(signal, 'sigwaitinfo'):
            _PROTECTED.update(self.signals)

    def _on_signal(self, number, frame):
        if self._received is None:
            self._received = signal.Signals(number).name

    def before_run(self, runner):
        if threading.current_thread() is threading.main_thread():
            self._previous_handlers = {number: signal.signal(number, self._on_signal)
                                       for number in self.signals}

    def after_run(self, runner):
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers = {}
        _PROTECTED.clear()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {name: value for name, value in (outputs or {}).items()
                  if 'loss' in name and isinstance(value, torch.Tensor)} if self.check_finite else {}
        values = (torch.stack([value.detach().float().mean() for value in losses.values()])
                  if losses else torch.zeros(1))
        flags = torch.stack([torch.tensor(float(self._received is not None), device=values.device),
                             (~values.isfinite()).any().float()])
        all_reduce(flags)  # one collective answers both questions for all ranks
        stop, non_finite = (flags > 0).tolist()
        if non_finite:
            self._stop_on_non_finite(runner, losses, data_batch)
        if stop:
            self._stop(runner, in_train_iter=True)

    def before_train(self, runner):
        self._training = True

    def after_train(self, runner):
        self._training = False

    def after_val(self, runner):
        if self._training:  # validation inside training
            flag = torch.tensor([float(self._received is not None)])
            all_reduce(flag)
            if flag.item() > 0:
                self._stop(runner, in_train_iter=False)

    def _stop_on_non_finite(self, runner, losses, data_batch):
        bad = [name for name, value in losses.items() if not torch.isfinite(value).all()]
        reports = all_gather_object((get_rank(), bad, batch_files(data_batch)))
        where = '; '.join(f'rank {rank}: {", ".join(terms)} (batch: {", ".join(files) or "?"})'
                          for rank, terms, files in reports if terms)
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'Training stopped at iteration {runner.iter + 1}: '
            f'loss terms not finite on {where}. Nothing was saved from this iteration on; '
            + (f'the newest checkpoint is {last}.' if last else 'no checkpoint was written.')
            + ' Resume from it with a lower learning rate or gradient clipping '
            '(optim_wrapper.clip_grad), or check those images.')

    def _stop(self, runner, in_train_iter):
        hook = next((h for h in runner.hooks if isinstance(h, ResumableCheckpointHook)), None)
        where = (f'after iteration {runner.iter + 1}' if in_train_iter
                 else f'after the validation at iteration {runner.iter}')
        received = f'{self._received or "A stop signal"} received (on some rank)'
        if hook is None:
            runner.logger.warning(f'{received}: stopped {where} without a checkpoint (no '
                                  'ResumableCheckpointHook).')
        else:
            path = hook.save_interrupted(runner, in_train_iter)
            barrier()  # no rank exits (its launcher would kill the others) before rank 0 wrote it
            runner.logger.info(f'{received}: stopped {where}, saved {path}; continue with '
                               '--resume.')
        raise Preempted(f'Preempted {where}')


def write_exit_status(code: int):
    """Tell the launcher (``tools/dist_run.sh``) the ranks' exit code, which torchrun does not
    pass on."""
    path = os.environ.get(EXIT_STATUS_FILE)
    if path:
        with open(path, 'w') as f:
            f.write(f'{code}\n')
