"""Every registered spatial token mixer in the unified architecture at one size, compared as
"Demystify Transformers & Convolutions" compares them, in one table (docs/mixers.md).

    python tools/analysis_tools/compare_mixers.py [--arch tiny] [--custom-imports MODULE ...]
        [--demo RESULTS ...] [--markdown docs/mixers.md] [--device cpu|cuda] [--batch-size N]
        [--repeat R] [--warmup W]

One row per mixer of ``MIXERS``: the released class built around it (``UnifiedSwin``, ... ,
``UnifiedGroupMix``, ``UnifiedFLatten``) at ``--arch``, or, for a mixer no class names (yours,
imported with ``--custom-imports``), ``UnifiedBackbone(arch=ARCH, mixer=dict(type=NAME))``.
Columns (random weights, eval mode unless training):

* params: the backbone's; GFLOPs: the backbone on one image at 224x224 and at 800x1333 (Mask R-CNN's
  size), one multiply-add one FLOP (``groupmix_backbones.analysis.count_flops``);
* img/s and train step at 224: the ImageNet classifier (the family's neck, a 1000-class head),
  inference under ``no_grad`` and one training step (forward, backward, AdamW), ``--batch-size``;
* the backbone's inference time and peak memory (activations and workspace, of one step; CUDA max
  allocated or the CPU peak RSS) on one image at 512x512 and 1024x1024, and each 1024 / 512 ratio:
  how cost grows with the map (4x the pixels; 4.0 is linear);
* with ``--demo RESULTS`` (``work_dirs/demo/results.json`` of ``tools/demo.py``, one or more), the
  demo metrics of the mixers whose demos they hold.

``--markdown FILE`` writes the table, the date, the machine and the command between the markers
of FILE (docs/mixers.md). Timings mean something on a quiet machine only.
"""
import argparse
import datetime
import importlib
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark import machine, markdown, write_markdown  # noqa: E402

from groupmix_backbones.analysis import count_flops, measure_alternately  # noqa: E402
from groupmix_backbones.models import UnifiedBackbone  # noqa: E402
from groupmix_backbones.registry import BACKBONES, MIXERS  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BEGIN, END = '<!-- compare_mixers.py table -->', '<!-- end of compare_mixers.py table -->'
DEMO_METRICS = ('accuracy/top1', 'coco/bbox_mAP', 'coco/segm_mAP', 'mIoU')


def backbone_configs(arch):
    """``{mixer name: backbone config}``: the released class around each mixer, else
    UnifiedBackbone around it with its defaults."""
    named = {}
    for cls in BACKBONES:
        if issubclass(cls, UnifiedBackbone) and arch in cls.arch_zoo:
            with torch.device('meta'):
                mixer = cls(arch=dict(cls.arch_zoo[arch], depths=[1] * 4)).mixer['type']
            named.setdefault(mixer, dict(type=cls.__name__, arch=arch))
    return {name: named.get(name, dict(type='UnifiedBackbone', arch=arch, mixer=dict(type=name)))
            for name in MIXERS.module_dict}


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def classifier(backbone_cfg, width):
    return build(dict(type='ImageClassifier', backbone=dict(backbone_cfg, out_indices=(3, )),
                      neck=dict(type='PointwiseConvPoolNeck', in_channels=width),
                      head=dict(type='LinearClsHead', num_classes=1000,
                                in_channels=width * 3 // 2)))


class TensorClassifier(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def demo_metrics(paths):
    """``{backbone type: demo metrics}`` of tools/demo.py results files."""
    demo_tool = importlib.import_module('demo')
    found = {}
    for path in paths:
        with open(path) as f:
            results = json.load(f)
        for family, result in results.items():
            cfg = Config.fromfile(osp.join(REPO, demo_tool.FAMILIES[family]['cls']))
            found[cfg.model.backbone.type] = result['metrics']
    return found


def measure_mixer(backbone_cfg, args):
    """The row's numbers of one backbone config."""
    backbone = build(backbone_cfg).to(args.device).eval()
    one = {size: torch.randn(1, 3, *size, device=args.device)
           for size in (args.cls_size, args.det_size, *args.map_sizes)}
    row = dict(params=sum(p.numel() for p in backbone.parameters()),
               flops_cls=count_flops(backbone, one[args.cls_size])[0],
               flops_det=count_flops(backbone, one[args.det_size])[0])
    timing = dict(rounds=1, repeat=args.repeat, warmup=args.warmup)
    for size in args.map_sizes:
        row[size] = measure_alternately([backbone], one[size], 'infer', **timing)[0]
    model = TensorClassifier(classifier(backbone_cfg, backbone.embed_dims[-1])).to(args.device)
    batch = torch.randn(args.batch_size, 3, *args.cls_size, device=args.device)
    row['infer'] = measure_alternately([model], batch, 'infer', **timing)[0][0]
    row['train'] = measure_alternately([model], batch, 'train', **timing)[0][0]
    return row


def table(rows, args, demo):
    small, large = args.map_sizes
    size = '{0}x{1}'.format
    header = ['mixer', 'model', 'params (M)', f'GFLOPs {size(*args.cls_size)}',
              f'GFLOPs {size(*args.det_size)}', f'img/s {size(*args.cls_size)}',
              f'train step {size(*args.cls_size)} (ms)', f'ms {size(*small)}',
              f'MB {size(*small)}', f'ms {size(*large)}', f'MB {size(*large)}',
              'time ratio', 'memory ratio']
    if demo:
        header += ['demo top-1', 'demo bbox mAP', 'demo segm mAP', 'demo mIoU']
    lines = [header]
    for name, (cfg, row) in rows.items():
        (t_small, m_small), (t_large, m_large) = row[small], row[large]
        model = cfg['type'] + ('' if cfg['type'] != 'UnifiedBackbone' else f"({name})")
        cells = [f'`{name}`', f"`{model}` `{cfg['arch']}`", f"{row['params'] / 1e6:.2f}",
                 f"{row['flops_cls'] / 1e9:.2f}", f"{row['flops_det'] / 1e9:.1f}",
                 f"{args.batch_size / row['infer']:.1f}", f"{row['train'] * 1e3:.0f}",
                 f'{t_small * 1e3:.0f}', f'{m_small / 2 ** 20:.0f}', f'{t_large * 1e3:.0f}',
                 f'{m_large / 2 ** 20:.0f}', f'{t_large / t_small:.1f}',
                 f'{m_large / m_small:.1f}' if m_small else '–']
        if demo:
            metrics = demo.get(cfg['type'] if cfg['type'] != 'UnifiedBackbone' else name, {})
            cells += [f'{metrics[key]:.3g}' if key in metrics else '–' for key in DEMO_METRICS]
        lines.append(cells)
    return markdown(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='tiny', help='micro, tiny, small or base')
    parser.add_argument('--custom-imports', nargs='+', default=[], metavar='MODULE',
                        help='modules that register mixers of yours (importable by name)')
    parser.add_argument('--demo', nargs='+', default=[], metavar='RESULTS',
                        help="tools/demo.py's work_dirs/demo/results.json files")
    parser.add_argument('--markdown', metavar='FILE', help='write the table between its markers')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, default=8, help='of the 224 classifier steps')
    parser.add_argument('--repeat', type=int, default=3, help='timed steps')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--cls-size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'))
    parser.add_argument('--det-size', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument('--map-sizes', type=int, nargs=2, default=(512, 1024), metavar=('S', 'L'),
                        help='the square maps of the backbone time and memory columns')
    args = parser.parse_args(argv)
    args.cls_size, args.det_size = tuple(args.cls_size), tuple(args.det_size)
    args.map_sizes = [(s, s) for s in args.map_sizes]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    sys.path[:0] = [osp.join(REPO, 'tools'), '.']
    for module in args.custom_imports:
        importlib.import_module(module)
    demo = demo_metrics(args.demo)
    rows = {}
    for name, cfg in backbone_configs(args.arch).items():
        print(f'measuring {name} ({cfg["type"]} {args.arch})', flush=True)
        rows[name] = (cfg, measure_mixer(cfg, args))
    text = table(rows, args, demo)
    print(text)
    if args.markdown:
        command = ' '.join(['python tools/analysis_tools/compare_mixers.py', *argv])
        write_markdown(args.markdown, f'Measured {datetime.date.today()} on {machine()}, '
                                      f'{args.device}; command: `{command}`\n\n{text}',
                       begin=BEGIN, end=END)
    return text


if __name__ == '__main__':
    main()
