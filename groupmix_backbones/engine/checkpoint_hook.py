"""mmengine's CheckpointHook, made safe to kill mid-save or to run out of disk, and exact to
resume."""
import contextlib
import functools
import glob
import os
import os.path as osp

from mmengine.dataset import InfiniteSampler
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import get_worker_info

from .checksum import SUFFIX, checksum_line, remove_with_checksum
from .random_state import get_random_state, set_random_state

INCOMPLETE = '.incomplete'  # suffix of a file still being written; renamed away once complete
WORKER_STATE = '_worker_random_state'  # batch key: (worker id, its random state after the batch)


def fsync_path(path: str):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(incomplete: str, path: str):
    """Move the fully written file ``incomplete`` onto ``path`` in one step that a crash cannot
    leave half done (same folder, fsync, ``os.replace``, fsync of the folder)."""
    fsync_path(incomplete)
    os.replace(incomplete, path)
    if os.name == 'posix':
        fsync_path(osp.dirname(path) or '.')


def write_text_atomically(path: str, text: str):
    with removing_on_error(path + INCOMPLETE):
        with open(path + INCOMPLETE, 'w') as f:
            f.write(text)
        replace_durably(path + INCOMPLETE, path)


@contextlib.contextmanager
def removing_on_error(incomplete: str):
    """Remove the partly written ``incomplete`` if the block fails (a full disk keeps no debris)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(incomplete)
        raise


class CheckpointWriteError(OSError):
    """A checkpoint (or ``last_checkpoint``) could not be written, e.g. the disk is full. What was
    saved before is untouched, and the message names it."""


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` (same arguments) whose checkpoints survive a kill
    and resume exactly.

    * mmengine removes the outdated checkpoint first and then writes the new one in place, so a
      kill in between can leave nothing loadable. Here the new checkpoint is written to
      ``NAME.incomplete`` in the same folder, fsynced and renamed to ``NAME``; then
      ``last_checkpoint`` is replaced atomically; only then are outdated checkpoints removed.
      The same holds for ``save_best``: the old best goes once the new one is in place.
    * A write that fails (a full disk) removes its partial file and stops the run with
      :class:`CheckpointWriteError` naming the checkpoint still in place to resume from.
    * Every checkpoint records each rank's random state (python, numpy, torch CPU and CUDA) in
      ``meta['random_states']``. Resuming restores it where the uninterrupted run went on (for an
      iteration-based loop, after mmengine has advanced the dataloader past the trained batches),
      and validation does not consume training randomness, so the resumed run draws the same
      augmentations and dropout as an uninterrupted one. When the new run drew another seed than
      the checkpoint's (``randomness.seed=None``), the train sampler and workers take the
      checkpoint's, which mmengine restores only after it has built them.
    * Epoch-based loops with ``persistent_workers=True``: the workers' random streams run on
      across epochs (new workers would be seeded afresh and draw other augmentations). Each batch
      brings its worker's random state with it (:class:`RecordingWorkerState`), checkpoints keep
      each worker's last one, and a resumed run's workers start from it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._val_random_state = None
        self._resumed = None
        self._worker_states = None  # {worker id: random state} of persistent workers
        self._epoch_start_worker_states = None
        self._restore_at_first_batch = None
        self._restore_after_skipped = None  # (batches to skip, restore)

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        interrupted = runner.message_hub.get_info('interrupted_ckpt')
        self._save_as(runner, self.filename_tmpl.format(step), meta)
        if not is_main_process():
            return
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self._remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
        self._remove_superseded(interrupted)

    def save_interrupted(self, runner, in_train_iter: bool):
        """Write the checkpoint that a stopped run resumes from, ``iter_N.pth`` (N: iterations
        trained), outside the rotation of ``max_keep_ckpts`` and removed once a later checkpoint
        is written; ``last_checkpoint`` names it. ``in_train_iter``: called in
        ``after_train_iter`` (an epoch-based run resumes inside the epoch), else after validation."""
        iteration = runner.iter + int(in_train_iter)
        worker_states = None
        if in_train_iter and not isinstance(runner.train_loop, IterBasedTrainLoop):
            # the resumed run loads this epoch's trained batches again from the epoch's start
            worker_states = self._epoch_start_worker_states
        filename = f'iter_{iteration}.pth'
        previous = runner.message_hub.get_info('interrupted_ckpt')
        runner.message_hub.update_info('interrupted_ckpt',
                                       self.file_backend.join_path(self.out_dir, filename))
        self._save_as(runner, filename, dict(epoch=runner.epoch, iter=iteration), worker_states)
        self._remove_superseded(previous)
        return self.last_ckpt

    def _remove_superseded(self, interrupted):
        """Remove the stop checkpoint ``interrupted`` (if any) once a later one is written."""
        if (is_main_process() and interrupted and interrupted != self.last_ckpt
                and self.file_backend.isfile(interrupted)):
            self._remove(interrupted)

    def _save_as(self, runner, filename, meta, worker_states=None):
        """Write the checkpoint ``filename`` with each rank's random state, then
        ``last_checkpoint``."""
        # the checkpoint before this one: of this run, or of the run it resumed
        previous = self.last_ckpt or runner.message_hub.get_info('last_ckpt')
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # inside validation (a new best checkpoint) training goes on from the state before it
        random_state = self._val_random_state or get_random_state()
        meta = dict(meta, random_states=all_gather_object(random_state))
        worker_states = self._worker_states if worker_states is None else worker_states
        if worker_states is not None:
            meta['worker_random_states'] = all_gather_object(worker_states)
        kept = (f'The previous checkpoint {previous} and {runner.work_dir}/last_checkpoint '
                'are unchanged: make room and resume with --resume.' if previous else
                'No checkpoint was written before this one.')
        self._write_checkpoint(
            runner, self.out_dir, filename, kept=kept, file_client_args=self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        last_checkpoint = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            write_text_atomically(last_checkpoint, self.last_ckpt)
        except OSError as error:
            raise CheckpointWriteError(
                error.errno, f'Could not update {last_checkpoint} after writing {self.last_ckpt} '
                f'({error.strerror or error}). It still names {previous}, which is kept; '
                'make room and resume with --resume.') from error

    def _remove(self, path):
        if isinstance(self.file_backend, LocalBackend):
            remove_with_checksum(path)
        else:
            self.file_backend.remove(path)

    def _write_checkpoint(self, runner, out_dir, filename, kept='', **kwargs):
        """``runner.save_checkpoint`` onto a local disk as ``filename.incomplete``, its sha256
        written to ``filename.sha256`` and the file renamed to ``filename`` once whole. A failed
        write (a full disk) removes the partial file and raises :class:`CheckpointWriteError`
        saying what is kept (``kept``)."""
        if not isinstance(self.file_backend, LocalBackend):
            return type(runner).save_checkpoint(runner, out_dir, filename, **kwargs)
        path = osp.join(out_dir, filename)
        try:
            with removing_on_error(path + INCOMPLETE):
                type(runner).save_checkpoint(runner, out_dir, filename + INCOMPLETE, **kwargs)
                if is_main_process():
                    write_text_atomically(path + SUFFIX, checksum_line(path + INCOMPLETE, path))
                    replace_durably(path + INCOMPLETE, path)
        except OSError as error:
            raise CheckpointWriteError(error.errno, f'Could not write the checkpoint {path} '
                                       f'({error.strerror or error}). {kept}') from error

    def _save_best_checkpoint(self, runner, metrics):
        """mmengine's, except that the previous best checkpoint is removed only after the new one
        is whole on disk (mmengine removes it first; a kill or a full disk in between left none)."""
        if not self.save_best:
            return
        keys = [None] if len(self.key_indicators) == 1 else list(self.key_indicators)
        previous = {key: self._best_path(key) for key in keys}
        for key in keys:  # mmengine removes whatever these name before saving: hide them
            self._set_best_path(runner, key, None)
        try:
            with self._runner_saving_atomically(runner):
                super()._save_best_checkpoint(runner, metrics)
        except BaseException:
            for key, old in previous.items():
                self._set_best_path(runner, key, old)
            raise
        for key, old in previous.items():
            new = self._best_path(key)
            if new is None:  # not improved: the old best stays best
                self._set_best_path(runner, key, old)
            elif old and old != new and is_main_process() and self.file_backend.isfile(old):
                self._remove(old)
                runner.logger.info(f'The previous best checkpoint {old} is removed')

    def _best_path(self, key):
        return self.best_ckpt_path if key is None else self.best_ckpt_path_dict[key]

    def _set_best_path(self, runner, key, path):
        """Point the best checkpoint of indicator ``key`` (None: the only one) at ``path``, in this
        hook and in the message hub that checkpoints save."""
        if key is None:
            self.best_ckpt_path = path
        else:
            self.best_ckpt_path_dict[key] = path
        info = 'best_ckpt' if key is None else f'best_ckpt_{key}'
        if path is not None:
            runner.message_hub.update_info(info, path)
        else:
            runner.message_hub.runtime_info.pop(info, None)

    @contextlib.contextmanager
    def _runner_saving_atomically(self, runner):
        """Within the block, ``runner.save_checkpoint`` goes through :meth:`_write_checkpoint`."""
        runner.save_checkpoint = functools.partial(
            self._write_checkpoint, runner,
            kept='The previous best checkpoint, if any, is kept.')
        try:
            yield
        finally:
            del runner.save_checkpoint

    def after_load_checkpoint(self, runner, checkpoint):
        meta = checkpoint.get('meta')
        meta = meta if isinstance(meta, dict) else {}  # a bare state dict has none
        self._resumed = dict(random_states=meta.get('random_states'), loader_seed=runner.seed,
                             worker_states=meta.get('worker_random_states'))

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            for folder in {self.out_dir, runner.work_dir}:  # left by a run killed while saving
                for incomplete in glob.glob(osp.join(glob.escape(folder), '*' + INCOMPLETE)):
                    os.remove(incomplete)
        loop = runner.train_loop
        loader = loop.dataloader
        if (not isinstance(loop, IterBasedTrainLoop) and loader.num_workers > 0
                and loader.persistent_workers):
            self._worker_states = {}
            loader.collate_fn = RecordingWorkerState(loader.collate_fn)
        resumed, self._resumed = self._resumed, None
        if resumed is not None and runner.iter > 0:  # resumed, not just loaded (load_from)
            self._follow_resumed_seed(runner, resumed['loader_seed'])
            if self._worker_states is not None:
                self._restore_worker_states(runner, resumed['worker_states'])
            self._restore_random_state(runner, resumed['random_states'])

    def before_train_epoch(self, runner):
        if self._worker_states is not None:
            self._epoch_start_worker_states = dict(self._worker_states)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._record_worker_state(data_batch)
        restore, self._restore_at_first_batch = self._restore_at_first_batch, None
        if restore is not None:
            restore()

    def skip_train_iter(self, runner, batch_idx, data_batch=None):
        """A batch trained before the run was interrupted, loaded again by a resumed
        :class:`~groupmix_backbones.engine.ResumableEpochBasedTrainLoop` and not trained: the
        random state is restored after the last of them."""
        self._record_worker_state(data_batch)
        if self._restore_after_skipped and batch_idx + 1 == self._restore_after_skipped[0]:
            restore, self._restore_after_skipped = self._restore_after_skipped[1], None
            restore()

    def _record_worker_state(self, data_batch):
        if isinstance(data_batch, dict) and WORKER_STATE in data_batch:
            worker_id, state = data_batch.pop(WORKER_STATE)
            self._worker_states[worker_id] = state

    def before_val(self, runner):
        self._val_random_state = get_random_state()

    def after_val(self, runner):
        set_random_state(self._val_random_state)
        self._val_random_state = None

    @staticmethod
    def _follow_resumed_seed(runner, loader_seed):
        if runner.seed == loader_seed:
            return
        loop = runner.train_loop
        loader = loop.dataloader
        for sampler in (loader.sampler, getattr(loader.batch_sampler, 'sampler', None)):
            if getattr(sampler, 'seed', None) == loader_seed:
                sampler.seed = runner.seed
                if isinstance(sampler, InfiniteSampler):  # its index stream is made at init
                    sampler.indices = sampler._indices_of_rank()
        loader.worker_init_fn = with_seed(loader.worker_init_fn, loader_seed, runner.seed)
        if isinstance(loop, IterBasedTrainLoop):  # its iterator (and workers) exist already
            loop.dataloader_iterator = type(loop.dataloader_iterator)(loader)

    def _restore_random_state(self, runner, states):
        if states is None or len(states) != get_world_size():
            runner.logger.warning(
                f'The checkpoint holds no random state for {get_world_size()} processes '
                f'({"none" if states is None else len(states)}): the resumed run draws other '
                'augmentations and dropout than an uninterrupted run would have.')
            return

        def restore():
            if not set_random_state(states[get_rank()]):
                runner.logger.warning('The GPU random state was not restored: the checkpoint was '
                                      'written by a process that saw another number of GPUs.')

        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreBeforeNextBatch(loop, restore)
        elif getattr(loop, 'trained_in_epoch', 0):  # resumed inside an epoch
            self._restore_after_skipped = (loop.trained_in_epoch, restore)
        elif self._worker_states is not None:
            # the uninterrupted run's persistent workers exist already; the resumed run's
            # iterator draws their base seed from this process's generator: restore after it
            self._restore_at_first_batch = restore
        else:
            restore()

    def _restore_worker_states(self, runner, states):
        loader = runner.train_loop.dataloader
        if states is None or len(states) != get_world_size():
            runner.logger.warning(
                'The checkpoint holds no random state of persistent dataloader workers: the '
                'resumed run draws other augmentations than an uninterrupted run would have.')
            return
        self._worker_states = dict(states[get_rank()])
        loader.worker_init_fn = functools.partial(seed_and_restore_worker,
                                                  init_fn=loader.worker_init_fn,
                                                  states=self._worker_states)


def with_seed(init_fn, old, new):
    """``init_fn`` (a ``functools.partial``, maybe wrapping another as ``init_fn``) with its
    ``seed`` argument ``old`` replaced by ``new``."""
    if not isinstance(init_fn, functools.partial):
        return init_fn
    keywords = dict(init_fn.keywords)
    if keywords.get('seed') == old:
        keywords['seed'] = new
    if 'init_fn' in keywords:
        keywords['init_fn'] = with_seed(keywords['init_fn'], old, new)
    return functools.partial(init_fn.func, *init_fn.args, **keywords)


class _RestoreBeforeNextBatch:
    """Stands in for an iteration-based loop's data iterator while mmengine's resume skips the
    ``loop.iter`` batches already trained on; then calls ``restore`` before handing out the next
    batch and gives the loop its own iterator back."""

    def __init__(self, loop, restore):
        self.loop, self.iterator, self.skip, self.restore = (loop, loop.dataloader_iterator,
                                                             loop.iter, restore)

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip:
            self.skip -= 1
        else:
            self.loop.dataloader_iterator = self.iterator
            self.restore()
        return next(self.iterator)


class RecordingWorkerState:
    """A dataloader's ``collate_fn`` that, in a worker, adds the worker's id and random state
    after making the batch to the batch (key ``WORKER_STATE``; the hook takes it out again)."""

    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, samples):
        batch = self.collate_fn(samples)
        worker = get_worker_info()
        if worker is not None and isinstance(batch, dict):
            batch[WORKER_STATE] = (worker.id, get_random_state(cuda=False))
        return batch


def seed_and_restore_worker(worker_id, init_fn, states):
    """``worker_init_fn`` of a resumed run: the loader's own, then the worker's random state as
    the checkpoint recorded it."""
    if init_fn is not None:
        init_fn(worker_id)
    if worker_id in states:
        set_random_state(states[worker_id], cuda=False)
