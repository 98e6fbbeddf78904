"""Each change groupmix_backbones.policy makes to another library works around an upstream issue
that is still there in the pinned versions. Each test here shows its issue, with our change undone:
a test that fails after an upgrade means upstream has fixed that issue, and the change in
groupmix_backbones/policy/__init__.py (and docs/checkpoints.md's list) can go."""
import fractions
import os.path as osp
import pickle
from types import SimpleNamespace

import mmdet.apis.inference as mmdet_inference
import mmseg.apis.inference as mmseg_inference
import pytest
import torch
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.dist import utils as dist_utils
from mmengine.registry import DefaultScope
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.apis.base import BaseInferencer as PretrainInferencer

import groupmix_backbones  # noqa: F401
from conftest import REPO
from test_checkpoint import mmengine_like_checkpoint
from test_checkpoint_safety import http_root  # noqa: F401  (a fixture)
from test_tasks import DEMOS


def demo_cfg(task):
    return Config.fromfile(osp.join(REPO, DEMOS['groupmixformer', task]))


def test_mmengine_refuses_its_own_checkpoints(tmp_path):
    """mmengine#1655: mmengine's local loader calls torch.load, which (weights_only by default
    since torch 2.6) refuses the HistoryBuffers and numpy values of mmengine's own checkpoints, so
    nothing resumes. Once it loads them, check that it still refuses code (the fix proposed in
    mmengine#1650 would not) before giving up the safe loaders."""
    torch.save(mmengine_like_checkpoint(), tmp_path / 'epoch_1.pth')
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        mmengine_checkpoint.load_from_local(str(tmp_path / 'epoch_1.pth'), map_location=None)


def test_mmengine_http_loader_unpickles_any_class(tmp_path, http_root):  # noqa: F811
    """mmengine's http loader reads through torch.hub.load_state_dict_from_url, whose
    weights_only defaults to False: any importable class is built (a harmless Fraction here; a
    crafted file runs code). No upstream issue found."""
    base_url, served = http_root
    torch.save({'meta': fractions.Fraction(1, 3)}, served / 'fraction.pth')
    loaded = mmengine_checkpoint.load_from_http(f'{base_url}/fraction.pth',
                                                model_dir=str(tmp_path), progress=False)
    assert loaded['meta'] == fractions.Fraction(1, 3)


def test_classification_inferencer_builds_in_the_current_scope(monkeypatch):
    """mmpretrain#1839: ImageClassificationInferencer builds its pipeline in the process-wide
    default scope, here the one mmseg's APIs leave behind."""
    monkeypatch.setattr(PretrainInferencer, '__init__', PretrainInferencer.__init__.__wrapped__)
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(KeyError, match='not in the mmseg::transform registry'):
            ImageClassificationInferencer(osp.join(REPO, DEMOS['groupmixformer', 'cls']),
                                          pretrained=False, device='cpu')


@pytest.mark.parametrize('api, module, patched, task, scope, error, match', [
    (mmdet_inference.inference_detector, mmdet_inference, 'get_test_pipeline_cfg', 'det', 'mmseg',
     TypeError, "LoadAnnotations.*'with_bbox'"),
    (mmseg_inference.inference_model, mmseg_inference, '_preprare_data', 'seg', 'mmdet', KeyError,
     'not in the mmdet::transform registry'),
], ids=['mmdet#10501', 'mmseg#3408'])
def test_inference_api_builds_in_the_current_scope(api, module, patched, task, scope, error, match,
                                                   monkeypatch):
    """mmdet#10501, mmseg#3408 (mmengine#1105): inference_detector and mmseg's inference_model
    build their pipelines in the current default scope, here the one the other library's APIs
    leave behind (mmseg's LoadAnnotations for a detector; the model itself is never reached)."""
    monkeypatch.setattr(module, patched, getattr(module, patched).__wrapped__)
    with DefaultScope.overwrite_default_scope(scope):
        with pytest.raises(error, match=match):
            api(SimpleNamespace(cfg=demo_cfg(task)), 'image.jpg')


class SetDevice(Exception):
    pass


def test_mmengine_launcher_selects_a_cuda_device_whatever_the_backend(monkeypatch):
    """mmengine's pytorch launcher calls torch.cuda.set_device before init_process_group, with
    gloo too, which fails without a GPU (the tools launch CPU runs under
    policy.cuda_device_selection_skipped). No upstream issue found."""
    def set_device(device):
        raise SetDevice(device)
    monkeypatch.setattr(torch.cuda, 'set_device', set_device)
    for name, value in {'RANK': '0', 'LOCAL_RANK': '0', 'WORLD_SIZE': '1',
                        'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': '29999'}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SetDevice):
        dist_utils._init_dist_pytorch('gloo')


PACKAGE_DEMO = 'mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py'


def config_inheriting(tmp_path, base):
    path = tmp_path / 'mine.py'
    path.write_text(f'_base_ = {base!r}\nmodel = dict(head=dict(num_classes=3))\n')
    return str(path)


def test_mmengine_resolves_package_references_of_its_own_packages_only(tmp_path, monkeypatch):
    """mmengine#1410 (its fix, mmengine#1411, closed): ``_base_ = 'package::path'`` resolves only
    for the OpenMMLab packages in mmengine's table; ours is refused."""
    monkeypatch.setattr(Config, '_get_cfg_path', staticmethod(Config._get_cfg_path.__wrapped__))
    monkeypatch.delitem(MODULE2PACKAGE, 'groupmix_backbones')
    with pytest.raises(AssertionError, match='does not support to load groupmix_backbones config'):
        Config.fromfile(config_inheriting(tmp_path, f'groupmix_backbones::{PACKAGE_DEMO}'))


def test_mmengine_scopes_every_dict_of_a_package_base():
    """What mmengine does with a base it finds by package reference (mmdet's, for one): every
    outermost typed dict gets ``_scope_=package``, whose registries would then build it. Ours are
    mmpretrain's, mmdet's or mmseg's configs, so our references resolve without a scope."""
    scoped = Config._dict_to_config_dict(
        {'model': {'type': 'ImageClassifier', 'backbone': {'type': 'GroupMixFormer'}}},
        'groupmix_backbones')
    assert scoped['model']['_scope_'] == 'groupmix_backbones'

