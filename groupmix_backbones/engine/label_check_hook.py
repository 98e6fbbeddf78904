"""Label maps checked as they are read: a value beyond the classes stops the run naming the file."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..data_checks import DatasetError


@HOOKS.register_module()
class SegLabelCheckHook(Hook):
    """Before each training and validation batch, check that every ``gt_sem_seg`` holds classes
    or the ignore index only, and raise :class:`DatasetError` naming the label map otherwise
    (mmseg's loss would fail without naming it, on a GPU as a device assert; its IoU metric drops
    such pixels silently). Decoding every map before a run is ``tools/misc/check_dataset.py``'s
    job; this costs one comparison per batch."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._check(runner.train_dataloader.dataset, data_batch)

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self._check(runner.val_dataloader.dataset, data_batch)

    @staticmethod
    def _check(dataset, data_batch):
        num_classes = len(dataset.metainfo.get('classes') or ())
        ignore = getattr(dataset, 'ignore_index', 255)
        for sample in (data_batch or {}).get('data_samples') or []:
            labels = getattr(sample, 'gt_sem_seg', None)
            if labels is None or not num_classes:
                continue
            wrong = labels.data[(labels.data >= num_classes) & (labels.data != ignore)]
            if wrong.numel():
                raise DatasetError(
                    f'{sample.metainfo.get("seg_map_path")}: label values '
                    f'{torch.unique(wrong).tolist()} (after reduce_zero_label, if set) beyond the '
                    f'{num_classes} classes (0..{num_classes - 1}, {ignore} ignored)')
