"""mmengine's CheckpointHook, made safe to kill mid-save and exact to resume."""
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

from .random_state import get_random_state, set_random_state

INCOMPLETE = '.incomplete'  # suffix of a file still being written; renamed away once complete


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
    with open(path + INCOMPLETE, 'w') as f:
        f.write(text)
    replace_durably(path + INCOMPLETE, path)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` (same arguments) whose checkpoints survive a kill
    and resume exactly.

    * mmengine removes the outdated checkpoint first and then writes the new one in place, so a
      kill in between can leave nothing loadable. Here the new checkpoint is written to
      ``NAME.incomplete`` in the same folder, fsynced and renamed to ``NAME``; then
      ``last_checkpoint`` is replaced atomically; only then are outdated checkpoints removed.
    * Every checkpoint records each rank's random state (python, numpy, torch CPU and CUDA) in
      ``meta['random_states']``. Resuming restores it where the uninterrupted run went on (for an
      iteration-based loop, after mmengine has advanced the dataloader past the trained batches),
      and validation does not consume training randomness, so the resumed run draws the same
      augmentations and dropout as an uninterrupted one. When the new run drew another seed than
      the checkpoint's (``randomness.seed=None``), the train sampler and workers take the
      checkpoint's, which mmengine restores only after it has built them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._val_random_state = None
        self._resumed = None

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # inside validation (a new best checkpoint) training goes on from the state before it
        random_state = self._val_random_state or get_random_state()
        meta = dict(meta, random_states=all_gather_object(random_state))
        atomic = isinstance(self.file_backend, LocalBackend)
        runner.save_checkpoint(
            self.out_dir, filename + INCOMPLETE if atomic else filename,
            file_client_args=self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        if atomic:
            replace_durably(self.last_ckpt + INCOMPLETE, self.last_ckpt)
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    def after_load_checkpoint(self, runner, checkpoint):
        meta = checkpoint.get('meta')
        meta = meta if isinstance(meta, dict) else {}  # a bare state dict has none
        self._resumed = dict(random_states=meta.get('random_states'), loader_seed=runner.seed)

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            for incomplete in glob.glob(osp.join(glob.escape(self.out_dir), '*' + INCOMPLETE)):
                os.remove(incomplete)  # left by a run killed while saving
        resumed, self._resumed = self._resumed, None
        if resumed is not None and runner.iter > 0:  # resumed, not just loaded (load_from)
            self._follow_resumed_seed(runner, resumed['loader_seed'])
            self._restore_random_state(runner, resumed['random_states'])

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
        init_fn = loader.worker_init_fn
        if isinstance(init_fn, functools.partial) and init_fn.keywords.get('seed') == loader_seed:
            loader.worker_init_fn = functools.partial(init_fn.func, *init_fn.args,
                                                      **dict(init_fn.keywords, seed=runner.seed))
        if isinstance(loop, IterBasedTrainLoop):  # its iterator (and workers) exist already
            loop.dataloader_iterator = type(loop.dataloader_iterator)(loader)

    @staticmethod
    def _restore_random_state(runner, states):
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
        else:
            restore()


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
