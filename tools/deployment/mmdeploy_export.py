"""A whole mmdet detector (Mask R-CNN: image in; boxes, scores, labels, masks out) in ONNX Runtime
through mmdeploy 1.x, then its detections checked against PyTorch's on images.

    python tools/deployment/mmdeploy_export.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out DIR
        [--score-thr 0.05] [--atol 1e-3] [--mask-tol 1e-3]

``tools/setup_env.sh`` installs mmdeploy 1.3.1 without its dependencies (its wheel pins
``protobuf<=3.20.2``, which the onnx here does not take; it runs with this stack's); in an
environment of your own::

    pip install --no-deps mmdeploy==1.3.1 aenum prettytable terminaltables multiprocess dill

mmdeploy 1.3.1 (its newest release) was written for torch 1.x/2.0; with torch 2.11 two things need
restoring, which this tool does while it exports: its export calls ``torch.onnx.export`` without
``dynamo=False`` (torch 2.11's default is the ``torch.export`` exporter, which its rewrites do not
drive), and its RoIAlign symbolic imports ``_cast_Long`` from ``torch.onnx.symbolic_opset9``,
which torch no longer has. Two of its rewrites select other detections than mmdet: this tool
registers its own for ONNX Runtime (:func:`register_rpn_as_mmdet`,
:func:`register_bbox_head_as_mmdet`). The graph is opset 16, whose RoiAlign has mmcv's
``aligned=True`` sampling (``half_pixel``). It is traced at the first image's size after the
config's test pipeline (TorchScript exporter: sizes our layers compute become constants), so it
serves that input size: the demo configs resize every image to one size. Its NMS runs as ONNX's
NonMaxSuppression, RoIAlign as ONNX's RoiAlign, and mmdeploy's ONNX Runtime custom-op library is
loaded from its wheel.

The check runs both the file (through mmdeploy's ONNX Runtime wrapper) and the PyTorch model on
each IMAGE and compares the detections (above ``--score-thr``) as sets: the same number, each
with one of the same label whose box is within ``--atol`` pixels (near-equal scores may list
them in another order) and whose mask differs on at most ``--mask-tol`` of the image's pixels;
it exits with an error naming the images otherwise.
"""
import argparse
import contextlib
import os.path as osp
import sys

import torch

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe

# the post-processing of mmdeploy's Mask R-CNN ONNX Runtime configs (instance-seg_onnxruntime_*)
POST_PROCESSING = dict(score_threshold=0.05, confidence_threshold=0.005, iou_threshold=0.5,
                       max_output_boxes_per_class=200, pre_top_k=5000, keep_top_k=100,
                       background_label_id=-1, export_postprocess_mask=False)


def deploy_config(score_thr: float):
    from mmengine.config import Config
    return Config(dict(
        onnx_config=dict(type='onnx', export_params=True, keep_initializers_as_inputs=False,
                         opset_version=16, save_file='end2end.onnx', input_names=['input'],
                         output_names=['dets', 'labels', 'masks'], input_shape=None,
                         optimize=True),
        codebase_config=dict(type='mmdet', task='ObjectDetection', model_type='end2end',
                             post_processing=dict(POST_PROCESSING, score_threshold=score_thr)),
        backend_config=dict(type='onnxruntime')))


@contextlib.contextmanager
def torchscript_export():
    """What mmdeploy 1.3.1 expects of torch (see the module docstring), while in this context."""
    import torch.onnx.symbolic_opset9 as opset9
    export = torch.onnx.export

    def export_torchscript(*args, **kwargs):
        kwargs['dynamo'] = False
        return export(*args, **kwargs)

    torch.onnx.export = export_torchscript
    if not hasattr(opset9, '_cast_Long'):
        opset9._cast_Long = lambda g, x, non_blocking: g.op('Cast', x, to_i=7)  # INT64
    try:
        yield
    finally:
        torch.onnx.export = export


def in_own_column(scores: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """``scores`` (...) as (..., G): each in the column that ``one_hot`` ((G,) or (..., G)) marks,
    -1 (below any NMS score threshold) in the others; a multiclass NMS then keeps each score to
    its group."""
    return scores[..., None] * one_hot + (one_hot - 1)


def nms_within_groups(boxes, scores, cfg, score_threshold: float):
    """mmdeploy's multiclass NMS of ``boxes`` (B, N, 4) by groups (``scores`` (B, N, G) from
    :func:`in_own_column`) with ``cfg``'s IoU threshold; the ``cfg.max_per_img`` best kept."""
    from mmdeploy.mmcv.ops import multiclass_nms
    return multiclass_nms(boxes, scores, cfg.max_per_img, nms_type=cfg.nms.get('type'),
                          iou_threshold=cfg.nms.iou_threshold, score_threshold=score_threshold,
                          pre_top_k=-1, keep_top_k=cfg.max_per_img)


def register_rpn_as_mmdet():
    """Register, for ONNX Runtime (before mmdeploy's default rewrite, which then stands aside),
    an export of ``RPNHead.predict_by_feat`` that selects mmdet's proposals. mmdeploy's rewrite
    runs one NMS over every level's boxes together and drops boxes of objectness below its
    post-processing score threshold (0.05); mmdet's ``RPNHead`` keeps every score, drops boxes
    not wider and taller than ``min_bbox_size`` and runs NMS within each level
    (``batched_nms`` by level id), then keeps the ``max_per_img`` best. Here each level is a
    class of mmdeploy's multiclass NMS (:func:`nms_within_groups`)."""
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat', backend='onnxruntime')
    def rpn_head__predict_by_feat__per_level(self, cls_scores, bbox_preds, score_factors=None,
                                             batch_img_metas=None, cfg=None, rescale=False,
                                             with_nms=True, **kwargs):
        cfg = self.test_cfg if cfg is None else cfg
        batch, levels = cls_scores[0].shape[0], len(cls_scores)
        anchors = self.anchor_generator.grid_anchors([s.shape[-2:] for s in cls_scores],
                                                     device=cls_scores[0].device)
        all_boxes, all_scores = [], []
        for level, (score, delta, anchor) in enumerate(zip(cls_scores, bbox_preds, anchors)):
            score = score.permute(0, 2, 3, 1).reshape(batch, -1, 1 if self.use_sigmoid_cls else 2)
            score = score.sigmoid()[..., 0] if self.use_sigmoid_cls else score.softmax(-1)[..., 0]
            if 0 < cfg.get('nms_pre', -1) < score.shape[1]:
                score, index = score.topk(cfg.nms_pre)
            else:
                index = torch.arange(score.shape[1], device=score.device).expand(batch, -1)
            delta = delta.permute(0, 2, 3, 1).reshape(batch, -1, 4)
            delta = delta.gather(1, index[..., None].expand(-1, -1, 4))
            boxes = self.bbox_coder.decode(anchor[index], delta,
                                           max_shape=batch_img_metas[0]['img_shape'])
            if cfg.get('min_bbox_size', -1) >= 0:
                wide = (boxes[..., 2] - boxes[..., 0] > cfg.min_bbox_size) & \
                    (boxes[..., 3] - boxes[..., 1] > cfg.min_bbox_size)
                score = torch.where(wide, score, -torch.ones_like(score))
            all_boxes.append(boxes)
            all_scores.append(in_own_column(score, torch.eye(levels, device=score.device)[level]))
        boxes, scores = torch.cat(all_boxes, 1), torch.cat(all_scores, 1)
        if not with_nms:
            return boxes, scores
        return nms_within_groups(boxes, scores, cfg, score_threshold=0.)


def register_bbox_head_as_mmdet():
    """Register, for ONNX Runtime, an export of ``BBoxHead.predict_by_feat`` that keeps mmdet's
    boxes. With class-specific regression (``reg_class_agnostic=False``) mmdeploy's rewrite keeps
    each RoI's box of its best class only and gives it to every class in NMS, so a detection of
    another class gets a box that is not its own; mmdet's ``multiclass_nms`` takes each class's
    own box. Here each (RoI, class) pair is a box of mmdeploy's multiclass NMS that scores in its
    class's column only (:func:`in_own_column`)."""
    import torch.nn.functional as F
    from mmdeploy.core import FUNCTION_REWRITER
    from mmdet.structures.bbox import get_box_tensor

    @FUNCTION_REWRITER.register_rewriter(
        'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat',
        backend='onnxruntime')
    def bbox_head__predict_by_feat__per_class(self, rois, cls_scores, bbox_preds,
                                              batch_img_metas, rcnn_test_cfg=None,
                                              rescale=False):
        scores = (self.loss_cls.get_activation(cls_scores) if self.custom_cls_channels
                  else F.softmax(cls_scores, dim=-1))[..., :self.num_classes]
        boxes = get_box_tensor(self.bbox_coder.decode(
            rois[..., 1:], bbox_preds, max_shape=batch_img_metas[0]['img_shape']))
        if not self.reg_class_agnostic:
            batch, classes = scores.shape[0], self.num_classes
            boxes = boxes.reshape(batch, -1, 4)  # (RoI, class) pairs: RoI-major, as bbox_preds
            scores = in_own_column(scores, torch.eye(classes, device=scores.device))
            scores = scores.reshape(batch, -1, classes)
        return nms_within_groups(boxes, scores, rcnn_test_cfg,
                                 score_threshold=rcnn_test_cfg.score_thr)


def match(ours, theirs):
    """Detections of one image matched as sets (near-equal scores may list them in another
    order): each of ``ours`` to the nearest unmatched one of ``theirs`` with its label. Returns
    the pairs (i, j) and how many of either have no partner."""
    free, pairs = list(range(len(theirs))), []
    for i, (box, label) in enumerate(zip(ours.bboxes, ours.labels)):
        candidates = [j for j in free if theirs.labels[j] == label]
        if candidates:
            pairs.append((i, min(candidates,
                                 key=lambda j: float((theirs.bboxes[j] - box).abs().max()))))
            free.remove(pairs[-1][1])
    return pairs, len(ours) - len(pairs) + len(free)


def differences(ours, theirs, pairs):
    """The largest box difference (pixels) and the largest fraction of an image's pixels on
    which a pair's masks differ (0 without masks)."""
    boxes = max((float((ours.bboxes[i] - theirs.bboxes[j]).abs().max()) for i, j in pairs),
                default=0.)
    masks = max((float((ours.masks[i].bool() != theirs.masks[j].bool()).float().mean())
                 for i, j in pairs if 'masks' in ours and 'masks' in theirs), default=0.)
    return boxes, masks


def compare(ours, theirs, atol: float, mask_tol: float) -> str:
    """'' when two images' detections agree (as sets), else what differs."""
    if len(ours) != len(theirs):
        return f'{len(ours)} detections in ONNX Runtime, {len(theirs)} in PyTorch'
    pairs, unmatched = match(ours, theirs)
    if unmatched:
        return f'{unmatched} detections without one of the same label in the other'
    boxes, masks = differences(ours, theirs, pairs)
    if boxes > atol:
        return f'boxes differ by {boxes:.3g} > {atol:g} pixels'
    return f'masks differ on {masks:.3g} > {mask_tol:g} of the pixels' if masks > mask_tol else ''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', nargs='+', metavar='IMAGE')
    parser.add_argument('--out', required=True, metavar='DIR', help='folder of end2end.onnx')
    parser.add_argument('--score-thr', type=float, default=0.05)
    parser.add_argument('--atol', type=float, default=1e-3, help='largest box difference (px)')
    parser.add_argument('--mask-tol', type=float, default=1e-3,
                        help='largest fraction of an image\'s pixels on which two masks differ')
    args = parser.parse_args(argv)
    try:
        from mmdeploy.apis import torch2onnx
        from mmdeploy.apis.utils import build_task_processor
    except ImportError as error:
        sys.exit(f'error: mmdeploy is not installed ({error}); see this tool\'s docstring for '
                 f'the pip command.')
    from mmengine.config import Config
    register_rpn_as_mmdet()
    register_bbox_head_as_mmdet()
    deploy_cfg, model_cfg = deploy_config(args.score_thr), Config.fromfile(args.config)
    with torchscript_export():
        torch2onnx(args.images[0], args.out, 'end2end.onnx', deploy_cfg, model_cfg,
                   args.checkpoint, device='cpu')
    path = osp.join(args.out, 'end2end.onnx')
    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    onnx_model = processor.build_backend_model([path])
    torch_model = processor.build_pytorch_model(args.checkpoint)
    failed = []
    for image in args.images:
        inputs, _ = processor.create_input(image, None)
        with torch.no_grad():
            ours, theirs = (model.test_step(inputs)[0].pred_instances
                            for model in (onnx_model, torch_model))
        theirs = theirs[theirs.scores > args.score_thr]
        ours = ours[ours.scores > args.score_thr]
        problem = compare(ours, theirs, args.atol, args.mask_tol)
        size = 'x'.join(map(str, inputs['inputs'][0].shape[1:]))
        if problem:
            failed.append(image)
            print(f'{osp.basename(image)} ({size}): differs: {problem}')
            continue
        boxes, masks = differences(ours, theirs, match(ours, theirs)[0])
        print(f'{osp.basename(image)} ({size}): {len(ours)} detections, labels equal, boxes '
              f'within {boxes:.2g} px, masks differ on {masks:.2g} of the pixels')
    print(f'Wrote {path} (mmdeploy end2end: boxes, labels, masks; ONNX Runtime with mmdeploy\'s '
          f'custom ops).')
    if failed:
        sys.exit(f'error: {path} differs from PyTorch on {len(failed)} of {len(args.images)} '
                 f'images.')


if __name__ == '__main__':
    main()
