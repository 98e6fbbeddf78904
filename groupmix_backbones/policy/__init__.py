"""Everything groupmix_backbones changes in other libraries, in one place ("What
importing groupmix_backbones changes" in docs/checkpoints.md lists it for users).

Importing the package applies the changes below, each named with the upstream issue it works
around (1b, official checkpoints converted on load, is a feature). ``tests/test_policy.py`` checks
that each issue is still there in the pinned versions: when one of its tests fails after an upgrade,
upstream has fixed that issue and its change can go.
Registering our backbones, hooks and optimizer constructor adds names to the libraries' registries
and replaces nothing, so it lives with the code it registers.
"""
import contextlib
import functools

import mmdet.apis.inference as mmdet_inference
import mmseg.apis.inference as mmseg_inference
import torch
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.apis.base import BaseInferencer as PretrainInferencer

from ..converters import convert_for_model
from ..resources import PACKAGE
from . import checkpoint
from .configs import package_configs_resolved
from .scopes import pipeline_in_scope, run_in_scope

# 1. Checkpoints are data: every URL scheme mmengine knows is read by checkpoint.safe_torch_load.
# mmengine's own loaders call torch.load, whose weights_only default (torch>=2.6) refuses
# mmengine's own checkpoints (https://github.com/open-mmlab/mmengine/issues/1655; the fix proposed
# upstream, https://github.com/open-mmlab/mmengine/pull/1650, turns weights_only off), and its http
# loader reads through torch.hub.load_state_dict_from_url with weights_only=False, which runs any
# pickle (no upstream issue found).
SAFE_LOADERS = {
    '': checkpoint.load_from_local,
    ('http://', 'https://'): checkpoint.load_from_http,
    'pavi://': checkpoint.load_from_pavi,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): checkpoint.load_from_ceph,
    ('modelzoo://', 'torchvision://'): checkpoint.load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): checkpoint.load_from_openmmlab,
    'mmcls://': checkpoint.load_from_mmcls,
}
for prefixes, loader in SAFE_LOADERS.items():
    CheckpointLoader.register_scheme(prefixes, loader, force=True)


def _official_converted(load_state_dict):
    """``load_state_dict`` given the converted state dict of an official checkpoint of ours."""
    @functools.wraps(load_state_dict)
    def load(module, state_dict, *args, **kwargs):
        converted = convert_for_model(module, state_dict)
        return load_state_dict(module, state_dict if converted is None else converted, *args,
                               **kwargs)
    return load


# 1b. Official checkpoints of our families load into models holding our backbones, converted in
# memory (logged): mmengine's load_checkpoint, Runner.load_checkpoint (load_from, resume,
# tools/test.py) and the inferencers all load through _load_checkpoint_to_model, which calls this
# module-level load_state_dict (a feature, no upstream issue; init_cfg with a prefix: our
# backbones' init_weights). Other models get every checkpoint as it is.
mmengine_checkpoint.load_state_dict = _official_converted(mmengine_checkpoint.load_state_dict)

# 2. The inference APIs of mmpretrain, mmdet and mmseg in one process: each builds its pipeline in
# its model's scope and leaves the process-wide default scope as it was (see .scopes;
# https://github.com/open-mmlab/mmengine/issues/1105).
# mmpretrain's get_model builds the model in scope 'mmpretrain': build the pipeline there too
# (https://github.com/open-mmlab/mmpretrain/issues/1839).
PretrainInferencer.__init__ = run_in_scope(PretrainInferencer.__init__,
                                           lambda *args, **kwargs: 'mmpretrain')
# inference_detector builds its pipeline in the current default scope
# (https://github.com/open-mmlab/mmdetection/issues/10501).
mmdet_inference.get_test_pipeline_cfg = pipeline_in_scope(mmdet_inference.get_test_pipeline_cfg)
# mmseg's inference_model builds its pipeline in _preprare_data(imgs, model), in the current default
# scope (https://github.com/open-mmlab/mmsegmentation/issues/3408).
mmseg_inference._preprare_data = run_in_scope(
    mmseg_inference._preprare_data, lambda imgs, model: model.cfg.get('default_scope', 'mmseg'))

# 3. Configs inherit ours by package reference, `_base_ = 'groupmix_backbones::mmdet_cfgs/...'`, as
# they do mmdet's: mmengine knows our package (its table of OpenMMLab packages; mmengine#1410) and
# resolves our references to the files in the installed .mim/ or the clone, without giving their
# dicts a scope of their own (see .configs).
MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
Config._get_cfg_path = staticmethod(package_configs_resolved(Config._get_cfg_path))


@contextlib.contextmanager
def cuda_device_selection_skipped():
    """4. Not on import: for the duration, ``torch.cuda.set_device`` does nothing. mmengine's
    launchers call it before ``init_process_group`` whatever the backend, which fails on a host
    without a GPU even with gloo; the tools' CPU runs launch under this (no upstream issue
    found)."""
    set_device, torch.cuda.set_device = torch.cuda.set_device, lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device
