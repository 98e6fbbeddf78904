"""The generated model zoo (tools/model_zoo.py) cannot drift from the registry, the configs and
groupmix_backbones/zoo.py: regenerated in memory, it must equal the committed files."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

import groupmix_backbones  # noqa: F401
from conftest import REPO, load_tool
from groupmix_backbones import papers, zoo
from groupmix_backbones.safe_checkpoint import load_from_http

model_zoo = load_tool('tools/model_zoo.py')


@pytest.fixture(scope='module')
def rendered():
    return model_zoo.render()


@pytest.fixture(scope='module')
def configs():
    return model_zoo.model_configs()


def committed(path):
    with open(osp.join(REPO, path)) as f:
        return f.read()


def test_committed_files_are_what_the_tool_generates(rendered):
    """Run ``python tools/model_zoo.py`` after changing an arch, a config or zoo.py."""
    for generated in ('metafile.yml', 'README.md'):
        on_disk = {osp.relpath(path, REPO)
                   for path in glob.glob(osp.join(REPO, '*_cfgs', '*', generated))}
        assert on_disk == {path for path in rendered if path.endswith(generated)}
    stale = [path for path, text in rendered.items() if committed(path) != text]
    assert not stale, f'out of date, run python tools/model_zoo.py: {stale}'


def test_every_arch_and_config_is_listed(rendered, configs):
    doc = rendered[model_zoo.DOC]
    for name, arch in model_zoo.registered_archs():
        assert f'| `{name}` | `{arch}` |' in doc
    listed = {model['Config'] for path, text in rendered.items() if path.endswith('metafile.yml')
              for model in yaml.safe_load(text)['Models']}
    every = {config for tasks in configs.values() for paths in tasks.values() for config in paths}
    assert len(every) > 100 and listed == every
    assert all(f'(../{config})' in doc for config in every)
    assert sorted(yaml.safe_load(rendered[model_zoo.INDEX])['Import']) == sorted(
        path for path in rendered if path.endswith('metafile.yml'))


def test_metafiles_name_the_weights_that_load(rendered):
    """``Weights``: the official checkpoint a config loads as it is, wherever mmengine's loaders
    can fetch it (the unified classifiers and the 20 official unified Mask R-CNN 1x detectors);
    the other official classifiers are share pages or links without a file name, which our http
    loader refuses, as model_zoo.loadable says."""
    models = [model for path, text in rendered.items() if path.endswith('metafile.yml')
              for model in yaml.safe_load(text)['Models']]
    weights = {model['Config']: model['Weights'] for model in models if 'Weights' in model}
    detectors = [config for config in weights if config.startswith('mmdet_cfgs/')]
    assert len(detectors) == 20
    assert all(config.startswith('mmdet_cfgs/unified/') and '_1x_' in config
               for config in detectors)
    for model in models:
        official = model.get('Converted From', {}).get('Weights')
        if official:
            assert (model['Config'] in weights) == model_zoo.loadable(official), model['Name']
    assert sum(model_zoo.loadable(url) for url in weights.values()) == len(weights) == 40
    unloadable = zoo.MODELS['FLattenSwin', 'tiny']['weights']
    assert not model_zoo.loadable(unloadable)
    with pytest.raises(ValueError, match='does not end in a file name'):
        load_from_http(unloadable)
    readme = rendered['mmdet_cfgs/unified/README.md']
    # none: 10 released archs' 3x configs and the 8 1x configs of the new mixers (U-GroupMix, U-FLatten)
    assert readme.count('| [official](') == 20 and readme.count('| none |') == 10 + 8


def test_zoo_facts_are_of_registered_archs_and_cite_their_source():
    archs = set(model_zoo.registered_archs())
    classes = [name for collection in zoo.COLLECTIONS.values() for name in collection['classes']]
    for text in (papers.DESCRIPTIONS, papers.BIBTEX, papers.UPSTREAM_LICENSES):
        assert set(text) == set(zoo.COLLECTIONS)
    assert sorted(classes) == sorted({name for name, _ in archs})
    for key, facts in zoo.MODELS.items():
        assert key in archs, key
        for number, source in (('top1', 'top1_source'), ('box_ap', 'det_source'),
                               ('miou', 'seg_source')):
            assert facts.get(number) is None or facts[source].startswith('https://'), key
        assert facts.get('weights', 'https://').startswith('https://'), key


@pytest.mark.parametrize('config', [
    'mmpretrain_cfgs/flatten/flatten-swin-base_8xb32_in1k-384px.py',
    'mmdet_cfgs/unified/mask-rcnn_unified-swin-small_fpn_ms-crop-3x_coco.py',
    'mmseg_cfgs/flatten/upernet_flatten-swin-small_8xb2-160k_ade20k-512x512.py'])
def test_configs_are_read_as_mmengine_reads_them(config):
    """The tool reads the backbone of 150 configs without running them (mmengine would take
    minutes): the same type and arch, through inheritance, as mmengine's merge."""
    backbone = Config.fromfile(osp.join(REPO, config)).model.backbone
    assert model_zoo.backbone_of(config) == (backbone.type, backbone.arch)


def test_the_converter_command_writes_what_the_configs_load(configs):
    for (name, arch), tasks in configs.items():
        for config in tasks.get('det', []) + tasks.get('seg', []):
            _, backbone = model_zoo.read_config(config)
            init = model_zoo.literal_keywords(backbone.get('init_cfg'))
            if 'checkpoint' in init:
                assert model_zoo.converted_name(tasks['cls'][0]) == init['checkpoint'], config


def test_flops_are_kept_for_every_arch_and_size_and_recount(configs):
    measured = model_zoo.load_flops()
    for name, arch in model_zoo.registered_archs():
        sizes = model_zoo.measured_sizes(arch, configs.get((name, arch), {}))
        assert set(measured[f'{name} {arch}']) == {model_zoo.size_key(s) for s in sizes}
    flops = model_zoo.count_backbone_flops('FLattenPVTv2', 'b0', (224, 224))
    assert measured['FLattenPVTv2 b0']['224x224'] == flops
