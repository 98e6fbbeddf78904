"""Evaluate a checkpoint with any groupmix_backbones config (mmpretrain, mmdet or mmseg scope).
Launch several processes with ``tools/dist_test.sh``."""
import argparse
import copy
import json
import os.path as osp
import time

from mmengine.config import ConfigDict
from mmengine.dist import get_rank
from mmengine.evaluator import DumpResults
from mmengine.runner import Runner

from groupmix_backbones import fuse_modules  # registers the backbones, safe checkpoint loading
from groupmix_backbones.deployment import compile_dynamic
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory
from groupmix_backbones.runtime import (add_runner_args, load_cfg, prepare_cfg,
                                        process_group_closed_on_exit, run_and_exit)


def draw_predictions(cfg, show_dir: str):
    """Have the library's own visualization hook draw every test image into ``show_dir``
    (detection and segmentation: the ground truth beside the prediction)."""
    show_dir = osp.abspath(show_dir)
    hook = cfg.default_hooks.visualization
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    elif scope == 'mmseg':  # drawn through the visualizer's local backend, under save_dir
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = show_dir
    elif scope == 'mmpretrain':
        hook.update(enable=True, interval=1, out_dir=show_dir)
    else:
        raise ValueError(f'--show-dir: default_scope {scope!r} is not one of mmpretrain, mmdet, '
                         'mmseg.')
    # a visualizer of its own: the hooks draw with the process's latest one, and one of the
    # config's name made earlier in this process (a training run, another library) would be reused
    cfg.visualizer.name = f'{scope}-show-dir-{time.time_ns()}'


def use_test_time_augmentation(cfg):
    """Test through the config's ``tta_model`` wrapping its model, on ``tta_pipeline``, as
    mmpretrain's, mmdet's and mmseg's ``tools/test.py --tta`` do. Our detection and segmentation
    recipes define both; a classifier without them gets mmpretrain's default (the test pipeline
    and its flip, scores averaged by ``AverageClsScoreTTA``)."""
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain' and 'tta_model' not in cfg:
        cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA')
    if scope == 'mmpretrain' and 'tta_pipeline' not in cfg:
        test_pipeline = cfg.test_dataloader.dataset.pipeline
        flips = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)]
        cfg.tta_pipeline = copy.deepcopy(test_pipeline[:-1]) + [
            dict(type='TestTimeAug', transforms=[flips, [test_pipeline[-1]]])]
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta: the config defines no {" and no ".join(missing)}. Inherit a '
                         'recipe that does (common_cfgs/mask-rcnn_tta.py for Mask R-CNN, '
                         'common_cfgs/upernet_8xb2-160k_ade20k-512x512-recipe.py for UperNet) or '
                         'define them as mmdet\'s and mmseg\'s configs do.')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def prediction_dump(cfg, out: str):
    """``--out`` as each library's ``tools/test.py`` means it. mmseg: every prediction written as
    a label-map PNG into the folder ``out`` by its IoUMetric (set here, in the config); mmpretrain
    and mmdet: the metric to add to the test evaluator that pickles the predictions into the file
    ``out`` (mmengine's ``DumpResults``; mmdet's ``DumpDetResults`` encodes masks as RLE)."""
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        evaluators = cfg.test_evaluator
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
            evaluator.update(output_dir=osp.abspath(out), keep_results=True)
        return None
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out!r}: {scope} predictions are dumped to a pickle file; name '
                         'one ending in .pkl or .pickle.')
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)
    return DumpResults(out_file_path=out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--metrics-out', help='also write the metrics to this JSON file')
    parser.add_argument('--fuse', action='store_true',
                        help='fold batch norms into convolutions before testing (same outputs)')
    parser.add_argument('--compile', nargs='?', const='inductor', metavar='BACKEND',
                        help='torch.compile the backbone and neck (default backend inductor) with '
                        'dynamic sizes: one compilation serves every image size')
    parser.add_argument('--show-dir', help='draw the predictions of every test image here '
                        "(the library's visualizer: boxes and masks, label maps, labels)")
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_model and tta_pipeline "
                        '(multi-scale and flip, as the papers test)')
    parser.add_argument('--out', help='keep the predictions: a .pkl file (mmpretrain, mmdet) or '
                        'a folder of label-map PNGs (mmseg)')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = prepare_cfg(load_cfg(args), args.config, args.launcher, args.work_dir, command='test')
    cfg.load_from = args.checkpoint
    if args.show_dir:
        draw_predictions(cfg, args.show_dir)
    if args.tta:
        use_test_time_augmentation(cfg)
    dump = prediction_dump(cfg, args.out) if args.out else None
    runner = Runner.from_cfg(cfg)
    if dump is not None:
        runner.test_evaluator.metrics.append(dump)
    # strict: a checkpoint that does not fit the model (another arch, other heads) is an error,
    # where the Runner's own loading (load_or_resume) would only log a warning and test whatever
    # weights the model was left with
    runner.load_checkpoint(args.checkpoint, strict=True)
    if args.fuse:
        fuse_modules(runner.model)
    if args.compile:
        compile_dynamic(runner.model, backend=args.compile)
    metrics = runner.test()
    if args.metrics_out and get_rank() == 0:
        with open(args.metrics_out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


def run(argv=None):
    """:func:`main` with the process group destroyed however it ends."""
    with process_group_closed_on_exit():
        main(argv)


if __name__ == '__main__':
    keep_freed_cpu_memory()
    run_and_exit(run)
