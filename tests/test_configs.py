import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

import groupmix_backbones  # noqa: F401
from conftest import REPO
from groupmix_backbones.runtime import check_dataset_paths, check_pretrained_paths

CONFIGS = sorted(
    osp.relpath(path, REPO) for folder in ('mmpretrain_cfgs', 'mmdet_cfgs', 'mmseg_cfgs')
    for path in glob.glob(osp.join(REPO, folder, '*', '*.py')))


def test_every_task_has_configs_and_a_demo():
    for folder in ('mmpretrain_cfgs', 'mmdet_cfgs', 'mmseg_cfgs'):
        assert any(c.startswith(folder) and 'demo' in c for c in CONFIGS), folder


@pytest.mark.parametrize('config', CONFIGS)
def test_config_loads_and_builds(config):
    cfg = Config.fromfile(osp.join(REPO, config))
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
    else:
        assert cfg.model.head.in_channels == dims[-1]


def test_missing_dataset_says_where_and_how():
    cfg = Config.fromfile(osp.join(REPO, 'mmdet_cfgs/groupmixformer/'
                                         'mask-rcnn_groupmixformer-small_fpn_1x_coco.py'))
    cfg.train_dataloader.dataset.data_root = '/nonexistent/coco/'
    with pytest.raises(FileNotFoundError, match=r"'/nonexistent/coco/' does not exist.*data_root"):
        check_dataset_paths(cfg)


def test_missing_pretrained_checkpoint_says_how_to_make_or_skip_it():
    cfg = Config.fromfile(osp.join(REPO, 'mmseg_cfgs/groupmixformer/'
                                         'upernet_groupmixformer-mini_demo.py'))
    cfg.model.backbone.init_cfg.checkpoint = '/nonexistent/classifier.pth'
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.init_cfg: pretrained checkpoint "
                                                r"'/nonexistent/classifier\.pth' does not exist"
                                                r".*model\.backbone\.init_cfg=None"):
        check_pretrained_paths(cfg.model)
    cfg.model.backbone.init_cfg = None
    check_pretrained_paths(cfg.model)
