"""BatchNorm statistics that every process of a run shares, so that validation during training, the
checkpoint rank 0 saves and a later test of that checkpoint all see the same model."""
from mmengine.dist import all_reduce_params, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import SyncBatchNorm, _BatchNorm


def unsynchronized_norm_stats(model):
    """The running means and variances of ``model``'s BatchNorm layers that no collective keeps
    equal across processes: every ``_BatchNorm`` but ``SyncBatchNorm``."""
    for module in model.modules():
        if (isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm)
                and module.track_running_stats):
            yield from (module.running_mean, module.running_var)


@HOOKS.register_module()
class NormStatsSyncHook(Hook):
    """Average the running statistics of plain BatchNorm over all processes after every training
    iteration.

    Each process updates them from its own batches (DDP runs with ``broadcast_buffers=False``, and
    broadcasting before each forward would still leave them apart after it), so without this
    every rank validates with its own statistics while only rank 0's are saved. The running
    statistics are linear in the batch statistics, so averaging them every iteration gives what
    averaging once at the end would (up to rounding), and whatever moment a checkpoint is taken
    at holds the statistics the run validates with. Training itself is unchanged: BatchNorm
    normalizes training batches by their own statistics. SyncBN (on GPUs) needs none of this; the
    tools add the hook to every distributed run (:func:`~groupmix_backbones.runtime.prepare_cfg`).
    """

    priority = 'ABOVE_NORMAL'  # before the checkpoint and logger hooks of the same iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_world_size() > 1:
            all_reduce_params(list(unsynchronized_norm_stats(runner.model)), op='mean')
