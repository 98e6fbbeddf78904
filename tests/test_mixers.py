"""docs/mixers.md: the tutorial's mixer, from a folder outside the repository, trains through the
mmpretrain, mmdet and mmseg Runners as the tutorial says; compare_mixers.py writes its table."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, load_tool
from test_tasks import short_run_options

EXAMPLES = osp.join(REPO, 'docs', 'examples')
TUTORIAL = {'cls': 'unified-pool-micro_demo.py',
            'det': 'mask-rcnn_unified-pool-micro_fpn_demo.py',
            'seg': 'upernet_unified-pool-micro_demo.py'}


def cfg_options(options):
    return [f'{key}={value}' for key, value in options.items()]


def test_tutorial_mixer_trains_from_its_own_folder(demo_root, tmp_path):
    """``GROUPMIX_BACKBONES=<repo> PYTHONPATH=<folder> python tools/train.py <folder>/<config>``
    from the repository, for each task (the demo data and schedule shortened); the detector and
    the segmentor start from the classifier the first run saved."""
    folder = tmp_path / 'my_mixers'
    shutil.copytree(EXAMPLES, folder)
    env = dict(os.environ, GROUPMIX_BACKBONES=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(folder), REPO]))
    checkpoint = None
    for task, config in TUTORIAL.items():
        options = short_run_options(task, demo_root)
        if checkpoint:  # the classifier's backbone, as the tutorial's det/seg configs load it
            del options['model.backbone.init_cfg']
            options['model.backbone.init_cfg.checkpoint'] = checkpoint
        work_dir = tmp_path / task
        result = subprocess.run(
            [sys.executable, 'tools/train.py', str(folder / config), '--work-dir', str(work_dir),
             '--cfg-options', *cfg_options(options)],
            cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        log = result.stdout + result.stderr
        assert 'PoolMixer' in open(next(work_dir.glob('*.py'))).read()  # the dumped config
        if task != 'cls':
            assert 'Loads checkpoint by local backend from path: ' + checkpoint in log
        with open(work_dir / 'last_checkpoint') as f:
            last = f.read().strip()
        checkpoint = checkpoint or last
        assert osp.isfile(last)


def test_compare_mixers_writes_every_mixer_into_the_docs_table(tmp_path, monkeypatch):
    """Micro, tiny inputs, one timed step: the table's rows and columns, not its timings."""
    monkeypatch.syspath_prepend(EXAMPLES)
    tool = load_tool('tools/analysis_tools/compare_mixers.py')
    doc = tmp_path / 'mixers.md'
    doc.write_text(f'# Mixers\n\n{tool.BEGIN}\nold table\n{tool.END}\n\nafter\n')
    results = tmp_path / 'results.json'
    results.write_text(json.dumps({'unified-groupmix': {'metrics': {
        'accuracy/top1': 71.5, 'coco/bbox_mAP': 0.25, 'coco/segm_mAP': 0.2, 'mIoU': 40.1}}}))
    tool.main(['--arch', 'micro', '--custom-imports', 'pool_mixer', '--demo', str(results),
               '--markdown', str(doc), '--cls-size', '32', '32', '--det-size', '64', '96',
               '--map-sizes', '32', '64', '--batch-size', '2', '--repeat', '1', '--warmup', '0',
               '--device', 'cpu'])
    text = doc.read_text()
    assert text.startswith('# Mixers\n\n' + tool.BEGIN) and text.endswith(f'{tool.END}\n\nafter\n')
    assert 'old table' not in text and 'command: `python tools/analysis_tools/compare_mixers.py' \
        ' --arch micro' in text
    rows = {line.split(' | ')[0].strip('| `'): line for line in text.splitlines()
            if line.startswith('| `')}
    assert {'HaloAttention', 'SpatialReductionAttention', 'ShiftedWindowAttention',
            'DepthwiseConvMixer', 'DCNv3', 'GroupMixAttention', 'FocusedLinearMixer',
            'PoolMixer'} <= set(rows)
    assert '`UnifiedBackbone(PoolMixer)` `micro`' in rows['PoolMixer']
    assert '`UnifiedGroupMix` `micro`' in rows['GroupMixAttention']
    assert rows['GroupMixAttention'].endswith('| 71.5 | 0.25 | 0.2 | 40.1 |')
    assert rows['PoolMixer'].endswith('| – | – | – | – |')
    header = next(line for line in text.splitlines() if line.startswith('| mixer'))
    assert 'GFLOPs 32x32 | GFLOPs 64x96' in header and 'ms 64x64 | MB 64x64' in header


@pytest.mark.parametrize('name', ['UnifiedGroupMix', 'UnifiedFLatten'])
def test_new_mixers_match_the_family_in_params_and_flops(name):
    """Each size within 10% of the median of the five released unified models of that size, in
    parameters (meta device) and FLOPs at 224 (kept in docs/model_zoo_flops.json)."""
    import statistics

    import torch

    from groupmix_backbones.registry import BACKBONES
    with open(osp.join(REPO, 'docs', 'model_zoo_flops.json')) as f:
        flops = json.load(f)
    released = ['UnifiedHaloNet', 'UnifiedPVT', 'UnifiedSwin', 'UnifiedConvNeXt',
                'UnifiedInternImage']
    classes = {cls.__name__: cls for cls in BACKBONES}
    for arch in ('micro', 'tiny', 'small', 'base'):
        with torch.device('meta'):
            params = {n: sum(p.numel() for p in classes[n](arch=arch).parameters())
                      for n in released + [name]}
        for counts in (params, {n: flops[f'{n} {arch}']['224x224'] for n in released + [name]}):
            median = statistics.median(counts[n] for n in released)
            assert abs(counts[name] / median - 1) <= 0.1, (arch, counts)
