"""Test-time augmentation of instance segmentation (Mask R-CNN), which mmdet 3.3.0's
``DetTTAModel`` refuses ("TTA of instance segmentation does not support now")."""
import torch
from mmcv.ops import batched_nms
from mmdet.models.test_time_augs import DetTTAModel
from mmengine.registry import MODELS
from mmengine.structures import InstanceData

#: the image dimensions a flip direction reverses, on masks of shape (N, H, W)
FLIPPED_DIMS = {'horizontal': (-1, ), 'vertical': (-2, ), 'diagonal': (-2, -1)}


def unflipped_masks(masks: torch.Tensor, metainfo: dict) -> torch.Tensor:
    """Masks predicted on a flipped view (already at the original image's size), flipped back."""
    if not metainfo.get('flip'):
        return masks
    return masks.flip(FLIPPED_DIMS[metainfo['flip_direction']])


@MODELS.register_module()
class InstanceSegTTAModel(DetTTAModel):
    """``DetTTAModel`` that keeps masks: every view's detections (boxes and masks flipped back)
    are pooled and merged by class-wise NMS, as ``DetTTAModel`` merges boxes; each detection
    kept brings the mask its view predicted. Views without masks merge as ``DetTTAModel``."""

    def _merge_single_sample(self, data_samples):
        if data_samples[0].pred_instances.get('masks', None) is None:
            return super()._merge_single_sample(data_samples)
        predictions = [sample.pred_instances for sample in data_samples]
        metainfos = [sample.metainfo for sample in data_samples]
        bboxes, scores = self.merge_aug_bboxes([p.bboxes for p in predictions],
                                               [p.scores for p in predictions], metainfos)
        labels = torch.cat([p.labels for p in predictions])
        masks = torch.cat([unflipped_masks(p.masks, meta)
                           for p, meta in zip(predictions, metainfos)])
        merged = data_samples[0]
        if bboxes.numel() == 0:
            merged.pred_instances = InstanceData(bboxes=bboxes, scores=scores, labels=labels,
                                                 masks=masks)
            return merged
        detections, kept = batched_nms(bboxes, scores, labels, self.tta_cfg['nms'])
        limit = self.tta_cfg['max_per_img']
        detections, kept = detections[:limit], kept[:limit]
        merged.pred_instances = InstanceData(bboxes=detections[:, :-1], scores=detections[:, -1],
                                             labels=labels[kept], masks=masks[kept])
        return merged
