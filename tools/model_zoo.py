"""The model zoo, generated from the registry, the configs, ``groupmix_backbones.zoo`` and
``groupmix_backbones.papers``: ``docs/model_zoo.md``, a ``metafile.yml`` and a ``README.md`` per
task and family folder (OpenMMLab's format: Collections and Models, as mmpretrain, mmdet and mmseg
write them; the README as their ``configs/<family>/README.md``) and ``model-index.yml``.

    python tools/model_zoo.py             # write them; FLOPs from docs/model_zoo_flops.json
    python tools/model_zoo.py --check     # exit 1 where a written file is not what it would be
    python tools/model_zoo.py --measure   # first count the FLOPs the file lacks (slow on a CPU)

Parameters are counted at every run (models built on the meta device); FLOPs are counted with
``--measure`` only (every arch at 224 and at the detection and segmentation sizes) and kept in
``docs/model_zoo_flops.json``.
"""
import argparse
import ast
import glob
import json
import os.path as osp
import sys
from urllib.parse import urlparse
from collections import defaultdict

import torch
import yaml

from groupmix_backbones import papers, zoo
from groupmix_backbones.analysis import count_flops
from groupmix_backbones.registry import BACKBONES

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {'mmpretrain_cfgs': 'cls', 'mmdet_cfgs': 'det', 'mmseg_cfgs': 'seg'}
#: the input size (H, W) each task's FLOPs are counted at: ImageNet, and the sizes the papers
#: quote for Mask R-CNN on COCO and UperNet on ADE20K
SIZES = {'cls': (224, 224), 'det': (800, 1280), 'seg': (512, 2048)}
FLOPS_FILE = 'docs/model_zoo_flops.json'
DOC = 'docs/model_zoo.md'
INDEX = 'model-index.yml'
TASK_NAMES = {'cls': 'Image Classification', 'det': 'Instance Segmentation',
              'seg': 'Semantic Segmentation'}
DATASETS = {'cls': 'ImageNet-1k', 'det': 'COCO', 'seg': 'ADE20K'}


def literal_keywords(call):
    """The keyword arguments of a ``dict(...)`` call node whose values are literals."""
    found = {}
    for keyword in getattr(call, 'keywords', []):
        try:
            found[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:  # a call (a nested dict) or a name: kept as the node
            found[keyword.arg] = keyword.value
    return found


def read_config(path):
    """``(local bases, model.backbone keywords)`` of a config file, read without running it."""
    with open(osp.join(REPO, path)) as f:
        tree = ast.parse(f.read())
    bases, backbone = [], {}
    for node in tree.body:
        names = [getattr(target, 'id', None) for target in getattr(node, 'targets', [])]
        if names == ['_base_']:
            value = ast.literal_eval(node.value)
            bases = [base for base in ([value] if isinstance(value, str) else value)
                     if '::' not in base]
        elif names == ['model']:
            inner = literal_keywords(node.value).get('backbone')
            backbone = literal_keywords(inner) if isinstance(inner, ast.Call) else {}
    bases = [osp.relpath(osp.normpath(osp.join(REPO, osp.dirname(path), base)), REPO)
             for base in bases]
    return bases, backbone


def backbone_of(path):
    """``(type, arch)`` of a config's backbone, from the file and the configs it inherits (the
    file's own keys first), as mmengine would merge them."""
    found = {}
    pending = [path]
    while pending and not {'type', 'arch'} <= set(found):
        bases, backbone = read_config(pending.pop(0))
        for key in ('type', 'arch'):
            if found.get(key) is None and isinstance(backbone.get(key), str):
                found[key] = backbone[key]
        pending = bases + pending
    return found.get('type'), found.get('arch')


def model_configs():
    """``{(class, arch): {task: [config, ...]}}`` of every config but the demos'."""
    configs = defaultdict(lambda: defaultdict(list))
    for folder, task in TASKS.items():
        for path in sorted(glob.glob(osp.join(REPO, folder, '*', '*.py'))):
            path = osp.relpath(path, REPO)
            if 'demo' not in osp.basename(path):
                configs[backbone_of(path)][task].append(path)
    return configs


def registered_archs():
    """Every ``(class, arch)`` of the registry, in registration order."""
    return [(cls.__name__, arch) for cls in BACKBONES for arch in cls.arch_zoo]


def backbone_class(name):
    return next(cls for cls in BACKBONES if cls.__name__ == name)


def count_parameters(name, arch):
    """The backbone's parameters, built on the meta device (no memory, no initialisation)."""
    with torch.device('meta'):
        backbone = backbone_class(name)(arch=arch)
    return sum(parameter.numel() for parameter in backbone.parameters())


def classification_size(arch):
    """224 x 224, or the resolution an arch is named for (``base_384``)."""
    resolution = arch.rsplit('_', 1)[-1]
    return (int(resolution), ) * 2 if '_' in arch and resolution.isdigit() else SIZES['cls']


def measured_sizes(arch, tasks):
    """The input sizes FLOPs are counted at: classification, and the tasks the arch has
    configs for."""
    sizes = [classification_size(arch)]
    return sizes + [SIZES[task] for task in ('det', 'seg') if task in tasks]


def size_key(size):
    return f'{size[0]}x{size[1]}'


def count_backbone_flops(name, arch, size):
    """FLOPs of the backbone (randomly initialised, eval mode) on one 3 x H x W image."""
    backbone = backbone_class(name)(arch=arch).eval()
    flops, _ = count_flops(backbone, torch.randn(1, 3, *size))
    return flops


def measure_flops(configs, measured, save):
    """Fill ``measured`` (``{"<class> <arch>": {"HxW": FLOPs}}``) for every registered arch and
    size it lacks, calling ``save(measured)`` after each arch (an interrupted run resumes)."""
    for name, arch in registered_archs():
        counts = measured.setdefault(f'{name} {arch}', {})
        missing = [size for size in measured_sizes(arch, configs.get((name, arch), {}))
                   if size_key(size) not in counts]
        for size in missing:
            counts[size_key(size)] = count_backbone_flops(name, arch, size)
            print(f'{name} {arch} {size_key(size)}: {counts[size_key(size)] / 1e9:.2f} GFLOPs',
                  flush=True)
        if missing:
            save(measured)
    return measured


def collection_of(name):
    return next(title for title, collection in zoo.COLLECTIONS.items()
                if name in collection['classes'])


def converted_name(cls_config):
    """The converted checkpoint our det/seg configs load: ``checkpoints/<model>_in1k[-384px].pth``
    from the classification config's name ``<model>_<batch>_in1k[-384px].py``."""
    parts = osp.splitext(osp.basename(cls_config))[0].split('_')
    return f'checkpoints/{parts[0]}_{parts[2]}.pth'


def converter_command(name, cls_config):
    """The command, for a Python with the package (``.venv/bin/python`` in a clone)."""
    converter = zoo.COLLECTIONS[collection_of(name)]['converter']
    tool = osp.splitext(osp.relpath(converter, 'tools'))[0]
    return f'python -m groupmix_backbones {tool} OFFICIAL.pth {converted_name(cls_config)}'


def loadable(url):
    """Whether mmengine's loaders (``load_from``, ``init_cfg``, ours) can fetch ``url``: they
    cache a download under the file name that ends its path. Share pages (SharePoint, Google
    Drive) and FLatten's ``.../f/<id>/?dl=1`` links have none: a person downloads those."""
    return bool(url) and bool(osp.splitext(osp.basename(urlparse(url).path))[1])


def trained_weights(name, arch, task, config):
    """The official checkpoint that ``config`` loads and tests as it is (converted on load), or
    None: the classifier's where the loaders can fetch it, the official detector of a 1x
    config."""
    facts = zoo.MODELS.get((name, arch), {})
    if task == 'cls' and loadable(facts.get('weights')):
        return facts['weights']
    if task == 'det' and facts.get('detector_weights') and '_1x_' in osp.basename(config):
        return facts['detector_weights']
    return None


def gflops(flops, size):
    value = (flops or {}).get(size_key(size))
    return '–' if value is None else f'{value / 1e9:.1f}'


def paper_cell(facts, key, source_key, suffix=''):
    if facts.get(key) is None:
        return '–'
    return f'[{facts[key]}{suffix}]({facts[source_key]})'


def detection_cell(facts):
    if facts.get('box_ap') is None:
        return '–'
    numbers = f"{facts['box_ap']} / {facts.get('mask_ap', '–')}"
    schedule = f" {facts['det_schedule']}" if facts.get('det_schedule') else ''
    return f"[{numbers}]({facts['det_source']}){schedule}"


def render_doc(configs, params, flops):
    lines = [
        '# Model zoo',
        '',
        '<!-- generated by tools/model_zoo.py from groupmix_backbones/zoo.py, the registry and '
        'the configs; do not edit -->',
        '',
        'Every registered backbone and arch: what its paper or official repository reports '
        '(linked), what we count, the official weights and how to convert them, and our '
        'configs. The reported numbers are those of the official weights; the converted '
        'classifiers compute what the official ones compute ([checkpoints.md](checkpoints.md)). '
        '"–": not published there, or no config of that task.',
        '',
        f'- **params**: the backbone (no classifier head, neck or decode head), counted from the '
        f'registry; **GFLOPs**: the backbone on one image at 224x224 (384x384 for `*_384`), '
        f'{size_key(SIZES["det"])} (Mask R-CNN on COCO) and {size_key(SIZES["seg"])} (UperNet '
        'on ADE20K), one multiply-add one FLOP, as `tools/analysis_tools/get_flops.py` counts '
        f'([benchmarks.md](benchmarks.md) says what; kept in `{FLOPS_FILE}`, '
        '`tools/model_zoo.py --measure`).',
        '- **top-1**: ImageNet-1k; **box / mask AP**: COCO val, Mask R-CNN (schedule where '
        'stated); **mIoU**: ADE20K val.',
        '- Metafiles: `model-index.yml` imports one `metafile.yml` per task and family folder '
        '(OpenMMLab\'s format); a `README.md` beside each folder\'s configs has its results '
        'table and citation.',
        weights_summary(configs),
        '- Commands: `python` is one with the package installed (`.venv/bin/python` in a clone).',
    ]
    for title, collection in zoo.COLLECTIONS.items():
        lines += ['', f'## {title}', '',
                  f"[{collection['paper']}]({collection['paper_url']}); official code: "
                  f"{collection['code_url']}; converter: `{collection['converter']}`.", '',
                  '| backbone | arch | params (M) | GFLOPs 224 | GFLOPs '
                  f'{size_key(SIZES["det"])} | GFLOPs {size_key(SIZES["seg"])} | top-1 | '
                  'box / mask AP | mIoU | official weights |',
                  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
        details = []
        for name, arch in registered_archs():
            if name not in collection['classes']:
                continue
            facts = zoo.MODELS.get((name, arch), {})
            counted = flops.get(f'{name} {arch}')
            resolution = facts.get('resolution', 224)
            weights = f"[download]({facts['weights']})" if facts.get('weights') else '–'
            resolution = f' ({resolution})' if resolution != 224 else ''
            lines.append(
                f'| `{name}` | `{arch}` | {params[name, arch] / 1e6:.1f} | '
                f'{gflops(counted, classification_size(arch))} | '
                f'{gflops(counted, SIZES["det"])} | {gflops(counted, SIZES["seg"])} | '
                f"{paper_cell(facts, 'top1', 'top1_source', resolution)} | "
                f'{detection_cell(facts)} | {paper_cell(facts, "miou", "seg_source")} | '
                f'{weights} |')
            details += arch_details(name, arch, facts, configs.get((name, arch), {}))
        lines += [''] + details
    return '\n'.join(lines) + '\n'


def weights_summary(configs):
    """The bullet that says which configs have trained weights and which have none."""
    rows = [(name, arch, task, config) for (name, arch), tasks in configs.items()
            for task, paths in tasks.items() for config in paths]
    trained = [row for row in rows if trained_weights(*row)]
    detectors = [row for row in trained if row[2] == 'det']
    pages = [row for row in rows if row[2] == 'cls' and not trained_weights(*row) and
             zoo.MODELS.get(row[:2], {}).get('weights')]
    return (f'- **Trained weights**: {len(trained)} of the {len(rows)} configs load official '
            f'weights as they are (the metafiles\' `Weights`, converted on load): '
            f'{len(trained) - len(detectors)} classifiers and {len(detectors)} Mask R-CNN 1x '
            f'detectors of the unified family. {len(pages)} more classifiers (GroupMixFormer, '
            'FLatten, SG-Former) have official weights that a person downloads (share pages, and '
            'links whose path names no file, which mmengine\'s loaders cannot cache): download, '
            'then `load_from` the file or convert it. **The other '
            f'{len(rows) - len(trained) - len(pages)} configs have no trained weights**, official '
            'or ours: every UperNet config and every other Mask R-CNN config. This project has '
            'trained none of its configs (only the CPU demos); their reported numbers are the '
            'papers\', for the authors\' own code and training.')


def arch_details(name, arch, facts, tasks):
    """The bullet of one arch under its family's table: configs, converter, notes."""
    if not tasks and not facts.get('note') and not facts.get('detector_weights'):
        return []
    parts = []
    for task in ('cls', 'det', 'seg'):
        parts += [f'[{osp.splitext(osp.basename(c))[0]}](../{c})' for c in tasks.get(task, [])]
    text = f'- `{name}` `{arch}`: ' + (', '.join(parts) if parts else 'no config yet')
    if tasks.get('cls') and facts.get('released', True):
        text += f"; convert: `{converter_command(name, tasks['cls'][0])}`"
    if facts.get('detector_weights'):
        text += (f"; official Mask R-CNN weights ([download]({facts['detector_weights']}), "
                 'the official format, not converted by our tools)')
    if facts.get('note'):
        text += f"; note: {facts['note']}"
    return [text]


def model_entry(name, arch, task, config, params, flops):
    """One ``Models`` item of a metafile: a config of ours with what is known of its backbone."""
    facts = zoo.MODELS.get((name, arch), {})
    size = classification_size(arch) if task == 'cls' else SIZES[task]
    metadata = {'Training Data': DATASETS[task], 'Backbone Parameters': params[name, arch]}
    counted = (flops.get(f'{name} {arch}') or {}).get(size_key(size))
    if counted is not None:
        metadata[f'Backbone FLOPs ({size_key(size)})'] = counted
    metrics = {}
    if task == 'cls' and facts.get('top1') is not None:
        metrics = {'Top 1 Accuracy': facts['top1']}
    elif task == 'det' and facts.get('box_ap') is not None and facts.get('det_schedule') and \
            f"_{facts['det_schedule']}_" in osp.basename(config):
        metrics = {'box AP': facts['box_ap'], 'mask AP': facts.get('mask_ap')}
    elif task == 'seg' and facts.get('miou') is not None:
        metrics = {'mIoU': facts['miou']}
    entry = {'Name': osp.splitext(osp.basename(config))[0],
             'In Collection': collection_name(name, task), 'Metadata': metadata}
    if metrics:
        entry['Results'] = [{'Task': TASK_NAMES[task], 'Dataset': DATASETS[task],
                             'Metrics': {k: v for k, v in metrics.items() if v is not None}}]
    if task == 'cls' and facts.get('weights'):
        entry['Converted From'] = {'Weights': facts['weights'],
                                   'Code': zoo.COLLECTIONS[collection_of(name)]['code_url']}
    entry['Config'] = config
    weights = trained_weights(name, arch, task, config)
    if weights:
        entry['Weights'] = weights
    return entry


#: a metafile Collection per paper and task: the paper's title, then the task's model
COLLECTION_SUFFIXES = {'cls': '', 'det': ' Mask R-CNN', 'seg': ' UperNet'}


def collection_name(name, task):
    return collection_of(name) + COLLECTION_SUFFIXES[task]


def folder_configs(configs):
    """``{folder: [(task, class, arch, config), ...]}``: the configs of each task and family
    folder, in registration order."""
    folders = defaultdict(list)
    for name, arch in registered_archs():
        for task, paths in configs.get((name, arch), {}).items():
            for config in paths:
                folders[osp.dirname(config)].append((task, name, arch, config))
    return dict(sorted(folders.items()))


def render_metafiles(configs, params, flops):
    """``{path: text}`` of every ``metafile.yml`` and of ``model-index.yml``."""
    folders = {folder: [(task, name, model_entry(name, arch, task, config, params, flops))
                        for task, name, arch, config in found]
               for folder, found in folder_configs(configs).items()}
    files = {}
    for folder, entries in sorted(folders.items()):
        task = entries[0][0]
        collections = []
        for title in sorted({collection_of(name) for _, name, _ in entries}):
            source = zoo.COLLECTIONS[title]
            collections.append({'Name': title + COLLECTION_SUFFIXES[task],
                                'Metadata': {'Training Data': DATASETS[task]},
                                'Paper': {'Title': source['paper'], 'URL': source['paper_url']},
                                'README': f'{folder}/README.md'})
        models = sorted((entry for _, _, entry in entries), key=lambda entry: entry['Name'])
        files[f'{folder}/metafile.yml'] = yaml.safe_dump(
            {'Collections': collections, 'Models': models}, sort_keys=False, width=100)
    files[INDEX] = yaml.safe_dump({'Import': sorted(files)}, sort_keys=False)
    return files


def config_detection_cell(facts, config):
    """The paper's box / mask AP on the config of its schedule (every schedule if not stated)."""
    schedule = facts.get('det_schedule')
    if facts.get('box_ap') is None or schedule and f'_{schedule}_' not in osp.basename(config):
        return '–'
    return detection_cell(facts) + ('' if schedule else ' (schedule not stated)')


#: what a family README's table reports for each task: (column, cell of (facts, config))
README_RESULTS = {
    'cls': ('paper top-1 (ImageNet-1k)', lambda facts, config: paper_cell(
        facts, 'top1', 'top1_source', f" ({facts['resolution']})" if facts.get('resolution')
        else '')),
    'det': ('paper box / mask AP (COCO)', config_detection_cell),
    'seg': ('paper mIoU (ADE20K)', lambda facts, config: paper_cell(facts, 'miou', 'seg_source')),
}
TASK_TITLES = {'cls': 'ImageNet-1k classification (mmpretrain)',
               'det': 'Mask R-CNN on COCO (mmdet)', 'seg': 'UperNet on ADE20K (mmseg)'}


def weights_cell(name, arch, task, config):
    weights = trained_weights(name, arch, task, config)
    if weights:
        return f'[official]({weights})'
    page = zoo.MODELS.get((name, arch), {}).get('weights')
    return f'[official, by hand]({page})' if task == 'cls' and page else 'none'


def render_readme(found, classifiers, params, flops):
    """The README beside a task and family folder's configs (``found``, of
    :func:`folder_configs`), as mmdet's configs/<family>/; ``classifiers``: each arch's
    classification configs."""
    task = found[0][0]
    title = collection_of(found[0][1])
    source = zoo.COLLECTIONS[title]
    licence = papers.UPSTREAM_LICENSES[title] or 'none stated: the repository has no licence file'
    column, cell = README_RESULTS[task]
    size = SIZES[task]
    lines = [f'# {title}: {TASK_TITLES[task]}', '',
             '<!-- generated by tools/model_zoo.py from groupmix_backbones/zoo.py, '
             'groupmix_backbones/papers.py, the registry and the configs; do not edit -->', '',
             f"> [{source['paper']}]({source['paper_url']}); official code: "
             f"{source['code_url']}; its licence: {licence}.", '',
             '## In brief', '', papers.DESCRIPTIONS[title], '',
             '## Results and models', '',
             "The paper's numbers are the official code's, trained by the authors (linked to where "
             'they are stated). "not trained here": this project has not trained the config, so '
             'there is no result of its own; "none": no trained weights exist for it, official or '
             'ours (the backbone starts from the converted ImageNet classifier, `init_cfg`). '
             'Official weights keep their authors\' terms '
             '([docs/license.md](../../docs/license.md)); '
             f'params and GFLOPs are the backbone\'s ([model zoo](../../{DOC})).', '',
             f'| config | backbone | params (M) | GFLOPs ({size_key(size)}) | {column} | '
             'weights | our result |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    for _, name, arch, config in found:
        facts = zoo.MODELS.get((name, arch), {})
        shape = classification_size(arch) if task == 'cls' else size
        stem = osp.splitext(osp.basename(config))[0]
        lines.append(f'| [{stem}]({osp.basename(config)}) | `{name}` `{arch}` | '
                     f'{params[name, arch] / 1e6:.1f} | '
                     f"{gflops(flops.get(f'{name} {arch}'), shape)} | {cell(facts, config)} | "
                     f'{weights_cell(name, arch, task, config)} | not trained here |')
    # the converted classifier of each arch: these configs (cls) or their backbones' init_cfg
    commands = list(dict.fromkeys(
        converter_command(name, classifiers[name, arch][0]) for _, name, arch, _ in found
        if classifiers.get((name, arch))
        and zoo.MODELS.get((name, arch), {}).get('released', True)))  # (new models: none)
    if commands:
        lines += ['', 'Convert the official ImageNet weights' + (
            ' (the classifiers load them; the detection and segmentation configs load them from '
            '`checkpoints/`)' if task == 'cls' else ', which these configs\' backbones load from '
            '`checkpoints/` (`init_cfg`)') + '; `python`: one with the package (`.venv/bin/python` '
            'in a clone):', '', '```bash', *commands, '```']
    if task == 'det' and any(trained_weights(*row[1:3], task, row[3]) for row in found):
        lines += ['', 'The official detectors load into the 1x configs as they are, converted on '
                  'load: `python -m groupmix_backbones test CONFIG DETECTOR.pth`; '
                  '`model_converters/stm_det2mmdet` writes the conversion to a file '
                  '([docs/checkpoints.md](../../docs/checkpoints.md)).']
    lines += ['', 'Every folder also has a CPU-sized `*_demo.py` config (`bash tools/demo.sh`).',
              '', '## Citation', '', '```bibtex', papers.BIBTEX[title], '```']
    return '\n'.join(lines) + '\n'


def render_readmes(configs, params, flops):
    classifiers = {key: tasks.get('cls') for key, tasks in configs.items()}
    return {f'{folder}/README.md': render_readme(found, classifiers, params, flops)
            for folder, found in folder_configs(configs).items()}


def load_flops():
    path = osp.join(REPO, FLOPS_FILE)
    if not osp.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def save_flops(measured):
    with open(osp.join(REPO, FLOPS_FILE), 'w') as f:
        json.dump(measured, f, indent=1, sort_keys=True)
        f.write('\n')


def render(flops=None):
    """``{path relative to the repository: text}`` of every generated file."""
    configs = model_configs()
    params = {key: count_parameters(*key) for key in registered_archs()}
    flops = load_flops() if flops is None else flops
    return {DOC: render_doc(configs, params, flops), **render_metafiles(configs, params, flops),
            **render_readmes(configs, params, flops)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if a generated file differs')
    parser.add_argument('--measure', action='store_true',
                        help=f'count the FLOPs of every arch into {FLOPS_FILE} first')
    args = parser.parse_args(argv)
    if args.measure:  # what the file lacks (delete an entry to count it again)
        measure_flops(model_configs(), load_flops(), save_flops)
    stale = []
    for path, text in render().items():
        full = osp.join(REPO, path)
        current = open(full).read() if osp.exists(full) else None
        if current != text:
            stale.append(path)
            if not args.check:
                with open(full, 'w') as f:
                    f.write(text)
    if args.check and stale:
        sys.exit('Out of date (run python tools/model_zoo.py): ' + ', '.join(stale))
    print(('Up to date: ' if args.check or not stale else 'Written: ') +
          (', '.join(stale) or 'every file'))


if __name__ == '__main__':
    main()
