import ast
import collections
import copy
import functools
import glob
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

import groupmix_backbones  # noqa: F401
from conftest import REPO
from groupmix_backbones.runtime import check_dataset_paths, check_pretrained_paths

CONFIGS = sorted(
    osp.relpath(path, REPO) for folder in ('mmpretrain_cfgs', 'mmdet_cfgs', 'mmseg_cfgs')
    for path in glob.glob(osp.join(REPO, folder, '*', '*.py')))
RECIPES = sorted(
    osp.relpath(path, REPO) for path in glob.glob(osp.join(REPO, 'common_cfgs', '*.py')))


@functools.lru_cache(maxsize=None)
def _parse(config):
    return Config.fromfile(osp.join(REPO, config))


def resolved(config):
    """A config of this repository resolved, parsed once per session (a copy, free to change)."""
    return copy.deepcopy(_parse(config))


def model_of(config):
    """The model a config is about, from OpenMMLab's naming: `<model>_...` for classifiers,
    `<algorithm>_<model>_...` for detectors and segmentors."""
    return osp.basename(config).split('_')[0 if config.startswith('mmpretrain_cfgs') else 1]


def host_of(config):
    """The backbone a config is about: its model less the size (`flatten-swin-tiny`)."""
    return model_of(config).rsplit('-', 1)[0]


def local_bases(config):
    """The files under this repository that `config` inherits, directly or not."""
    with open(osp.join(REPO, config)) as f:
        tree = ast.parse(f.read())
    bases = next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  and [getattr(target, 'id', None) for target in node.targets] == ['_base_']), [])
    found = []
    for base in [bases] if isinstance(bases, str) else bases:
        if '::' not in base:  # mmdet::, mmseg::, mmpretrain:: bases are the libraries'
            base = osp.relpath(osp.normpath(osp.join(REPO, osp.dirname(config), base)), REPO)
            found += [base] + local_bases(base)
    return found


def test_every_task_has_configs_and_a_demo():
    for folder in ('mmpretrain_cfgs', 'mmdet_cfgs', 'mmseg_cfgs'):
        assert any(c.startswith(folder) and 'demo' in c for c in CONFIGS), folder


@pytest.mark.parametrize('config', CONFIGS)
def test_config_loads_and_builds(config):
    cfg = resolved(config)
    assert cfg.custom_imports.imports == ['groupmix_backbones']
    scope = cfg.default_scope
    assert scope == config.split('_cfgs')[0]
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert type(backbone).__name__ == cfg.model.backbone.type
    if 'demo' not in config:
        assert scope == 'mmpretrain' or cfg.model.backbone.init_cfg.type == 'Pretrained'
    # the dims the necks and heads expect match what the backbone gives
    dims = [backbone.embed_dims[i] for i in backbone.out_indices]
    if scope == 'mmdet':
        assert cfg.model.neck.in_channels == dims
    elif scope == 'mmseg':
        assert cfg.model.decode_head.in_channels == dims
        assert cfg.model.auxiliary_head.in_channels == dims[2]
    else:  # a neck that changes the width says so (the unified family's PointwiseConvPoolNeck)
        assert cfg.model.head.in_channels == getattr(model.neck, 'out_channels', dims[-1])


def test_configs_inherit_only_shared_recipes_and_their_own_models_configs():
    """What models share lives in common_cfgs/, which inherits nothing else; a config may inherit
    another of its own model (-small from -tiny), never one of another model."""
    assert {host_of(config) for config in CONFIGS} == {
        'groupmixformer', 'flatten-pvt', 'flatten-pvtv2', 'flatten-swin', 'flatten-cswin',
        'unified-halo', 'unified-pvt', 'unified-swin', 'unified-convnext', 'unified-dcnv3',
        'unified-groupmix', 'unified-flatten', 'sgformer'}
    for recipe in RECIPES:
        assert set(local_bases(recipe)) <= set(RECIPES), f"{recipe} inherits a model's config"
    used = set()
    for config in CONFIGS:
        bases = local_bases(config)
        others = [base for base in bases
                  if base not in RECIPES and host_of(base) != host_of(config)]
        assert not others, (f'{config} inherits {others}, configs of another model: '
                            'move what they share to common_cfgs/')
        used.update(bases)
    assert set(RECIPES) <= used, f'recipes no config inherits: {sorted(set(RECIPES) - used)}'


def test_editing_one_models_config_changes_no_other_models_config(tmp_path):
    """Edit the FLatten-Swin-T classifier, the FLatten-Swin config the others inherit, in a copy of
    the trees and resolve every classifier again: FLatten-Swin's change, no other model's.
    (Detectors and segmentors inherit only their own model's configs, see the test above.)"""
    edited = 'mmpretrain_cfgs/flatten/flatten-swin-tiny_8xb128_in1k.py'
    for folder in ('common_cfgs', 'mmpretrain_cfgs'):
        shutil.copytree(osp.join(REPO, folder), tmp_path / folder)
    with open(tmp_path / edited, 'a') as f:
        f.write('train_dataloader = dict(num_workers=3)\n')
    changed = [config for config in CONFIGS if config.startswith('mmpretrain_cfgs')
               and Config.fromfile(tmp_path / config).to_dict() != resolved(config).to_dict()]
    assert edited in changed
    others = [config for config in changed if host_of(config) != host_of(edited)]
    assert not others, f'editing {edited} changed other models\' configs: {others}'


def test_the_detectors_and_segmentors_of_a_model_agree_on_its_backbone():
    """Each states its backbone (a backbone shared as a variable would end up in the configs)."""
    backbones = collections.defaultdict(dict)
    for config in CONFIGS:
        if not config.startswith('mmpretrain_cfgs'):
            backbone = resolved(config).model.backbone
            backbones[model_of(config), 'demo' in config][config] = backbone
    assert sum(len(by_config) > 1 for by_config in backbones.values()) > 10
    for by_config in backbones.values():  # (a base-size model of the unified family has one)
        first, *others = by_config.values()
        assert all(backbone == first for backbone in others), by_config


def test_missing_dataset_says_where_and_how():
    cfg = resolved('mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-small_fpn_1x_coco.py')
    cfg.train_dataloader.dataset.data_root = '/nonexistent/coco/'
    with pytest.raises(FileNotFoundError, match=r"'/nonexistent/coco/' does not exist.*data_root"):
        check_dataset_paths(cfg)


def test_missing_pretrained_checkpoint_says_how_to_make_or_skip_it():
    cfg = resolved('mmseg_cfgs/groupmixformer/upernet_groupmixformer-micro_demo.py')
    cfg.model.backbone.init_cfg.checkpoint = '/nonexistent/classifier.pth'
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.init_cfg: pretrained checkpoint "
                                                r"'/nonexistent/classifier\.pth' does not exist"
                                                r".*model\.backbone\.init_cfg=None"):
        check_pretrained_paths(cfg.model)
    cfg.model.backbone.init_cfg = None
    check_pretrained_paths(cfg.model)
