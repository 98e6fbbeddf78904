"""The demo: train and evaluate a family's demo configs on the generated shapes data, then draw what
they learned.

    python tools/demo.py [FAMILY]      FAMILY: groupmixformer (default), flatten, sgformer,
                                       unified, unified-groupmix, unified-flatten, or all
                                       (tools/demo.sh sets up .venv/ first)

For each family: classification (ImageNet format) first, then Mask R-CNN (COCO format) and UperNet
(ADE20K format) starting from its backbone, as the real configs start from ImageNet weights. Each
is trained with ``tools/dist_train.sh CONFIG 2`` and evaluated with ``tools/dist_test.sh``;
checkpoints and logs go to ``work_dirs/<config name>/``, pictures to ``work_dirs/demo/<family>/``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
import warnings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [osp.join(REPO, 'tools'), osp.join(REPO, 'tools', 'visualization')]
from make_demo_data import CLASSES, make_demo_data  # noqa: E402

# mmengine 0.10.7 imports pkg_resources, which setuptools < 81 (mmcv's build) deprecates loudly
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

#: each demo's model and its config folder (the family's); configs named as OpenMMLab names them.
#: unified-groupmix and unified-flatten: the seeds' attentions as unified mixers (docs/mixers.md)
DEMO_MODELS = {'groupmixformer': 'groupmixformer-micro', 'flatten': 'flatten-pvtv2-b0',
               'sgformer': 'sgformer-tiny', 'unified': 'unified-dcnv3-micro',
               'unified-groupmix': 'unified-groupmix-micro',
               'unified-flatten': 'unified-flatten-micro'}
FAMILIES = {name: dict(cls=f'mmpretrain_cfgs/{folder}/{model}_demo.py',
                       det=f'mmdet_cfgs/{folder}/mask-rcnn_{model}_fpn_demo.py',
                       seg=f'mmseg_cfgs/{folder}/upernet_{model}_demo.py')
            for name, model in DEMO_MODELS.items()
            for folder in [name.split('-')[0]]}  # demo: the demo config of each task
TASK_NAMES = dict(cls='classification', det='detection', seg='segmentation')
METRICS = dict(cls=('accuracy/top1', ), det=('coco/bbox_mAP', 'coco/segm_mAP'), seg=('mIoU', ))
#: what every family's demo must reach on the demo validation sets (guessing: top-1 16.7%)
FLOOR = {'accuracy/top1': 60, 'coco/bbox_mAP': 0.15, 'coco/segm_mAP': 0.10, 'mIoU': 35}
DATA = 'data/demo'
WORK = 'work_dirs'
PROCESSES = 2
# the lines of a training or test log shown while it runs (the rest goes to its log file)
PROGRESS = re.compile(r'(Epoch|Iter)\((train|val|test)\)')


def config_name(config):
    return osp.splitext(osp.basename(config))[0]


class Steps:
    """Numbered steps with the time since the start: ``[demo 3/8, 2:41] ...``."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.time()

    def __call__(self, message):
        self.done += 1
        print(f'[demo {self.done}/{self.total}, {self.elapsed()}] {message}', flush=True)

    def elapsed(self):
        seconds = int(time.time() - self.start)
        return f'{seconds // 60}:{seconds % 60:02d}'


def run(command, log_file):
    """Run a tool, its whole output to ``log_file``, its progress lines to the console; on failure
    show the end of the log and stop."""
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    with open(log_file, 'w') as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            if PROGRESS.search(line):
                print('    ' + shorten(line), flush=True)
    if process.wait():
        with open(log_file) as log:
            tail = log.readlines()[-30:]
        sys.exit(f'{"".join(tail)}\n[demo] failed: {" ".join(command)} (whole log: {log_file})')


def shorten(line):
    """A log line without its time stamp and with its main numbers only."""
    line = line.split(' - INFO - ')[-1].strip()
    tag = re.sub(r'\s+', ' ', re.match(r'\S+\s*\[[^\]]*\](\s*\[[^\]]*\])?', line).group())
    keep = re.findall(r'\b(eta|loss|accuracy/top1|coco/bbox_mAP|coco/segm_mAP|mIoU): (\S+)', line)
    return ' '.join([tag] + [f'{key} {value}' for key, value in keep])


def train(config, steps, *options):
    name = config_name(config)
    steps(f'training {name} on {PROCESSES} processes (log: {WORK}/{name}/demo_train.log)')
    run(['bash', 'tools/dist_train.sh', config, str(PROCESSES), *options],
        f'{WORK}/{name}/demo_train.log')
    with open(f'{REPO}/{WORK}/{name}/last_checkpoint') as f:
        return f.read().strip()


def evaluate(config, checkpoint, steps, show_dir=None):
    name = config_name(config)
    steps(f'evaluating {osp.relpath(checkpoint, REPO)}'
          + (f', drawing predictions to {show_dir}/' if show_dir else ''))
    metrics_file = f'{WORK}/{name}/metrics.json'
    run(['bash', 'tools/dist_test.sh', config, checkpoint, str(PROCESSES),
         '--metrics-out', metrics_file] + (['--show-dir', show_dir] if show_dir else []),
        f'{WORK}/{name}/demo_test.log')
    with open(f'{REPO}/{metrics_file}') as f:
        return json.load(f)


def run_family(family, steps):
    """Train and evaluate the three tasks of ``family``, then draw; returns its metrics, seconds
    and pictures."""
    start = time.time()
    configs = FAMILIES[family]
    pictures = f'{WORK}/demo/{family}'
    metrics, checkpoints = {}, {}
    checkpoints['cls'] = train(configs['cls'], steps)
    metrics.update(evaluate(configs['cls'], checkpoints['cls'], steps))
    pretrained = f'model.backbone.init_cfg.checkpoint={checkpoints["cls"]}'
    for task in ('det', 'seg'):
        checkpoints[task] = train(configs[task], steps, '--cfg-options', pretrained)
        metrics.update(evaluate(configs[task], checkpoints[task], steps,
                                show_dir=f'{pictures}/{TASK_NAMES[task]}'))
    metrics = {key: metrics[key] for task in METRICS for key in METRICS[task]}
    validated = {key: value for task in METRICS
                 for key, value in last_validation(configs[task], METRICS[task]).items()}
    steps(f'drawing classified images, training curves and a summary to {pictures}/')
    title = f'{family} demo: ' + ', '.join(f'{key} {value:.3g}' for key, value in metrics.items())
    drawn = draw_pictures(configs, checkpoints, osp.join(REPO, pictures), osp.join(REPO, DATA),
                          title=title)
    return dict(metrics=metrics, validated=validated, seconds=time.time() - start,
                pictures=drawn)


def last_validation(config, keys):
    """``keys`` of the last validation while training ``config`` (the curves' last points): the
    test of the checkpoint saved at that moment must give the same."""
    from groupmix_backbones.visualization.results import read_scalars
    _, val = read_scalars(f'{REPO}/{WORK}/{config_name(config)}')
    return {key: [record[key] for record in val if key in record][-1] for key in keys}


def draw_pictures(configs, checkpoints, out_dir, data_root, title=''):
    """Draw what a family's demo learned into ``out_dir``: classified validation images, the
    training curves of each task, the backbone's maps where it has a visualizer, and a summary
    of those with the drawings of ``tools/test.py --show-dir`` in ``out_dir/detection`` and
    ``out_dir/segmentation``. Returns ``{caption: path}``."""
    from groupmix_backbones.visualization.results import plot_training_curves, summary_sheet
    drawn = {'classified validation images': draw_classification(
        configs['cls'], checkpoints['cls'], data_root, f'{out_dir}/classification.png')}
    runs = {TASK_NAMES[task]: (f'{REPO}/{WORK}/{config_name(configs[task])}', METRICS[task][0])
            for task in ('cls', 'det', 'seg')}
    drawn['training curves'] = plot_training_curves(runs, f'{out_dir}/curves.png')
    maps = draw_backbone(configs['det'], checkpoints['det'], det_image(data_root),
                         f'{out_dir}/backbone')
    if maps:
        drawn['backbone maps of a validation image'] = maps
    panels = [('detection: ground truth | prediction', path)
              for path in sorted(glob.glob(f'{out_dir}/detection/*.jpg'))[:2]]
    panels += [('segmentation: ground truth | prediction', path)
               for path in sorted(glob.glob(f'{out_dir}/segmentation/**/*.png',
                                            recursive=True))[:2]]
    panels += [('classification', drawn['classified validation images']),
               ('validation metrics', plot_training_curves(runs, f'{out_dir}/metrics.png',
                                                           losses=False))]
    panels += [('backbone maps', maps)] if maps else []
    drawn['summary'] = summary_sheet(panels, f'{out_dir}/summary.png', title=title)
    summary_sheet(panels, f'{out_dir}/summary_small.png', title=title, max_pixels=1000,
                  colors=128)  # for a README
    drawn['detection: ground truth | prediction'] = f'{out_dir}/detection/'
    drawn['segmentation: ground truth | prediction'] = f'{out_dir}/segmentation/'
    return {caption: osp.relpath(path, REPO) for caption, path in drawn.items()}


def draw_classification(config, checkpoint, data_root, out_file, per_class=4):
    """The first ``per_class`` validation images of each class, classified, in a grid."""
    from groupmix_backbones.visualization.results import classification_grid
    from infer import build_inferencer
    from PIL import Image
    with open(f'{data_root}/imagenet/meta/val.txt') as f:
        samples = [line.split() for line in f if line.strip()]
    samples = [sample for c in range(len(CLASSES))
               for sample in [s for s in samples if int(s[1]) == c][:per_class]]
    paths = [f'{data_root}/imagenet/{path}' for path, _ in samples]
    predictions = build_inferencer(config, checkpoint)(paths)
    return classification_grid([Image.open(path).convert('RGB') for path in paths],
                               [p['pred_class'] for p in predictions],
                               [CLASSES[int(label)] for _, label in samples], out_file)


def draw_backbone(config, checkpoint, image, out_dir):
    """tools/visualization/visualize_backbone.py's sheet of the backbone's maps over ``image``;
    None for a backbone without a visualizer."""
    from groupmix_backbones.visualization import UnknownBackboneError, get_visualizer
    from mmengine.config import Config
    try:
        get_visualizer(Config.fromfile(config).model.backbone.type)
    except UnknownBackboneError:
        return None
    from visualize_backbone import main as visualize_backbone
    return visualize_backbone([config, checkpoint, image, '--out-dir', out_dir, '--sheet'])[0]


def det_image(data_root):
    """The first detection validation image."""
    return sorted(glob.glob(f'{data_root}/coco/val2017/*.jpg'))[0]


def report(results, total_seconds):
    """The metrics table (one row per family), each against the floor and the last validation
    while training; True if all reach the floor and equal their validation."""
    keys = [key for task in METRICS for key in METRICS[task]]
    print('\n[demo] results on the demo validation sets (guessing: top-1 16.7%; every pixel '
          'labelled background: mIoU 12.6)')
    header = f'  {"family":16s}' + ''.join(f'{key:>16s}' for key in keys) + f'{"minutes":>10s}'
    print(header)
    ok = True
    for family, result in results.items():
        cells = []
        for key in keys:
            value = result['metrics'][key]
            below = value < FLOOR[key]
            ok &= not below
            cells.append(f'{value:.3f}{" (low)" if below else ""}'.rjust(16))
        print(f'  {family:16s}' + ''.join(cells) + f'{result["seconds"] / 60:10.1f}')
        apart = {key: (value, result['metrics'][key])
                 for key, value in result['validated'].items() if value != result['metrics'][key]}
        ok &= not apart
        for key, (validated, tested) in apart.items():
            print(f'  {"":16s}{key}: {validated} in the last validation while training, {tested} '
                  'in the test of its checkpoint (they must be equal)')
    print('  floor: ' + ', '.join(f'{key} >= {value}' for key, value in FLOOR.items()))
    print(f'  total time: {total_seconds / 60:.1f} min')
    print('\n[demo] pictures:')
    for family, result in results.items():
        for caption, path in result['pictures'].items():
            print(f'  {path:60s} {caption}')
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('family', nargs='?', default='groupmixformer',
                        choices=[*FAMILIES, 'all'])
    args = parser.parse_args(argv)
    families = list(FAMILIES) if args.family == 'all' else [args.family]
    steps = Steps(1 + 7 * len(families))
    steps(f'generating the demo data in {DATA}/ (skipped when up to date)')
    make_demo_data(out=osp.join(REPO, DATA))
    results = {family: run_family(family, steps) for family in families}
    with open(osp.join(REPO, WORK, 'demo', 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    if not report(results, time.time() - steps.start):
        sys.exit('[demo] a metric is below the floor, or differs from its validation while '
                 'training, above.')


if __name__ == '__main__':
    main()
