"""A whole mmdet detector (Mask R-CNN: image in; boxes, scores, labels, masks out) in ONNX Runtime
through mmdeploy 1.x, then its detections checked against PyTorch's on images.

    python tools/deployment/mmdeploy_export.py CONFIG CHECKPOINT IMAGE [IMAGE ...] --out DIR
        [--score-thr 0.05] [--atol 1e-3]

mmdeploy is not in this environment's requirements: its wheel pins ``protobuf<=3.20.2``, which the
onnx here does not take. Install it without its dependencies (it runs with this stack's)::

    pip install --no-deps mmdeploy==1.3.1 aenum prettytable terminaltables multiprocess dill

mmdeploy 1.3.1 (its newest release) was written for torch 1.x/2.0; with torch 2.11 two things need
restoring, which this tool does for its own process only: its export calls ``torch.onnx.export``
without ``dynamo=False`` (torch 2.11's default is the ``torch.export`` exporter, which its rewrites
do not drive), and its RoIAlign symbolic imports ``_cast_Long`` from
``torch.onnx.symbolic_opset9``, which torch no longer has. The graph is traced at the first image's
size after the config's test pipeline (TorchScript exporter: sizes our layers compute become
constants), so it serves that input size: the demo configs resize every image to one size.
Its RoIAlign and NMS run as mmdeploy's ONNX Runtime custom ops (loaded from its wheel).

The check runs both the file (through mmdeploy's ONNX Runtime wrapper) and the PyTorch model on
each IMAGE and compares the detections (above ``--score-thr``) as sets: the same number, each
with one of the same label whose box is within ``--atol`` pixels (near-equal scores may list
them in another order); it exits with an error naming the image otherwise.
"""
import argparse
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
                         opset_version=11, save_file='end2end.onnx', input_names=['input'],
                         output_names=['dets', 'labels', 'masks'], input_shape=None,
                         optimize=True),
        codebase_config=dict(type='mmdet', task='ObjectDetection', model_type='end2end',
                             post_processing=dict(POST_PROCESSING, score_threshold=score_thr)),
        backend_config=dict(type='onnxruntime')))


def restore_torchscript_export():
    """What mmdeploy 1.3.1 expects of torch (see the module docstring), in this process."""
    import torch.onnx.symbolic_opset9 as opset9
    export = torch.onnx.export

    def export_torchscript(*args, **kwargs):
        kwargs['dynamo'] = False
        return export(*args, **kwargs)

    torch.onnx.export = export_torchscript
    if not hasattr(opset9, '_cast_Long'):
        opset9._cast_Long = lambda g, x, non_blocking: g.op('Cast', x, to_i=7)  # INT64


def box_error(ours, theirs):
    """Detections of one image matched as sets (near-equal scores may list them in another
    order): each of ``ours`` to the nearest unmatched one of ``theirs`` with its label. Returns
    the largest box difference (pixels; inf where one has no partner) and the unmatched count."""
    free = list(range(len(theirs)))
    error, unmatched = 0., 0
    for box, label in zip(ours.bboxes, ours.labels):
        candidates = [j for j in free if theirs.labels[j] == label]
        if not candidates:
            unmatched += 1
            continue
        diffs = [float((theirs.bboxes[j] - box).abs().max()) for j in candidates]
        best = min(range(len(candidates)), key=diffs.__getitem__)
        error = max(error, diffs[best])
        free.remove(candidates[best])
    return (error if not unmatched else float('inf')), unmatched + len(free)


def compare(ours, theirs, atol: float) -> str:
    """'' when two images' detections agree (as sets), else what differs."""
    if len(ours) != len(theirs):
        return f'{len(ours)} detections in ONNX Runtime, {len(theirs)} in PyTorch'
    error, unmatched = box_error(ours, theirs)
    if unmatched:
        return f'{unmatched} detections without one of the same label in the other'
    return f'boxes differ by {error:.3g} > {atol:g} pixels' if error > atol else ''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', nargs='+', metavar='IMAGE')
    parser.add_argument('--out', required=True, metavar='DIR', help='folder of end2end.onnx')
    parser.add_argument('--score-thr', type=float, default=0.05)
    parser.add_argument('--atol', type=float, default=1e-3, help='largest box difference (px)')
    args = parser.parse_args(argv)
    try:
        from mmdeploy.apis import torch2onnx
        from mmdeploy.apis.utils import build_task_processor
    except ImportError as error:
        sys.exit(f'error: mmdeploy is not installed ({error}); see this tool\'s docstring for '
                 f'the pip command.')
    from mmengine.config import Config
    restore_torchscript_export()
    deploy_cfg, model_cfg = deploy_config(args.score_thr), Config.fromfile(args.config)
    torch2onnx(args.images[0], args.out, 'end2end.onnx', deploy_cfg, model_cfg, args.checkpoint,
               device='cpu')
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
        problem = compare(ours, theirs, args.atol)
        size = 'x'.join(map(str, inputs['inputs'][0].shape[1:]))
        if problem:
            failed.append(image)
            print(f'{osp.basename(image)} ({size}): differs: {problem}')
            continue
        print(f'{osp.basename(image)} ({size}): {len(ours)} detections, labels equal, boxes '
              f'within {box_error(ours, theirs)[0]:.2g} px')
    print(f'Wrote {path} (mmdeploy end2end: boxes, labels, masks; ONNX Runtime with mmdeploy\'s '
          f'custom ops).')
    if failed:
        sys.exit(f'error: {path} differs from PyTorch on {len(failed)} of {len(args.images)} '
                 f'images.')


if __name__ == '__main__':
    main()
