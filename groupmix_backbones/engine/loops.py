"""An epoch-based training loop that resumes inside an epoch."""
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's :class:`~mmengine.runner.EpochBasedTrainLoop` (same arguments), resumable from
    a checkpoint written inside an epoch (a preempted run's, :class:`GracefulStopHook`): the
    epoch's batches trained before it are loaded again, in the same order, and handed to the
    hooks' ``skip_train_iter`` instead of being trained, so that the data, the workers' and this
    process's random draws go on as in the uninterrupted run (mmengine would train the whole
    epoch again)."""

    @property
    def trained_in_epoch(self) -> int:
        """How many batches of the current epoch were trained before this run resumed."""
        return max(0, self._iter - self._epoch * len(self.dataloader))

    def run_epoch(self) -> None:
        skip = self.trained_in_epoch
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            if idx < skip:
                self.runner.call_hook('skip_train_iter', batch_idx=idx, data_batch=data_batch)
            else:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
