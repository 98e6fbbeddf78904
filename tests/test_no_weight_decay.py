"""The parameters without weight decay come from the models (``no_weight_decay()``, timm's contract)
through the recipes' NoWeightDecayOptimWrapperConstructor, no longer from ``custom_keys`` repeated
in the configs: every config gets the parameter groups it got before."""
import copy
import re

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope, MODELS

from groupmix_backbones import FLattenSwin, UnifiedSwin
from groupmix_backbones.engine import NoWeightDecayOptimWrapperConstructor
from test_configs import CONFIGS, resolved


def former_custom_key(config):
    """The no-decay key the config had in ``paramwise_cfg.custom_keys`` before, if any: in the
    unified classification recipe and the FLatten-Swin classifiers (spelt ``.rel_pos_table``) and in
    the Swin-hosted detectors and segmentors (``rel_pos_table``); no demo config."""
    if 'demo' in config:
        return None
    if re.match(r'mmpretrain_cfgs/(unified/|flatten/flatten-swin-)', config):
        return '.rel_pos_table'
    if re.match(r'mm(det|seg)_cfgs/(unified|flatten)/[^/]*_(unified|flatten)-swin-', config):
        return 'rel_pos_table'
    return None


FORMER = [config for config in CONFIGS if former_custom_key(config)]


def built(config):
    """The config and its model, built on the meta device (names and shapes only)."""
    cfg = resolved(config)
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device('meta'):
        return cfg, MODELS.build(cfg.model)


def groups_by_name(model, optim_wrapper):
    """Each parameter's name -> its group's settings (torch ignores mmengine's ``decay_mult``)."""
    names = {id(param): name for name, param in model.named_parameters()}
    return {names[id(param)]: {k: v for k, v in group.items() if k not in ('params', 'decay_mult')}
            for group in optim_wrapper.optimizer.param_groups for param in group['params']}


def test_the_configs_that_had_custom_keys():
    # 20 unified and 4 FLatten-Swin classifiers, 12 detectors, 6 segmentors; and the 8 classifiers
    # of the new unified mixers (U-GroupMix, U-FLatten), which inherit the same unified recipe
    assert len(FORMER) == 42 + 8


@pytest.mark.parametrize('config', FORMER)
def test_parameter_groups_are_the_ones_custom_keys_gave(config):
    cfg, model = built(config)
    assert cfg.optim_wrapper.constructor == 'NoWeightDecayOptimWrapperConstructor'
    former = copy.deepcopy(cfg.optim_wrapper)
    del former['constructor']
    former.setdefault('paramwise_cfg', {}).setdefault('custom_keys', {})[
        former_custom_key(config)] = dict(decay_mult=0.)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        now = groups_by_name(model, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper)))
        before = groups_by_name(model, build_optim_wrapper(model, former))
    assert now == before
    for name in model.backbone.no_weight_decay():
        assert now[f'backbone.{name}']['weight_decay'] == 0.


@pytest.mark.parametrize('config', sorted(set(CONFIGS) - set(FORMER)))
def test_other_configs_have_nothing_more_without_decay(config):
    """The constructor changes nothing where the backbone names no parameter."""
    cfg, model = built(config)
    assert cfg.optim_wrapper.constructor == 'NoWeightDecayOptimWrapperConstructor'
    assert model.backbone.no_weight_decay() == set()


@pytest.mark.parametrize('backbone', [UnifiedSwin(arch='micro'), FLattenSwin(arch='tiny')],
                         ids=['UnifiedSwin', 'FLattenSwin'])
def test_bare_backbone_without_paramwise_cfg(backbone):
    """A bare backbone and no paramwise_cfg: only the relative position tables go without decay,
    all parameters keep the optimizer's learning rate."""
    constructor = NoWeightDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)))
    groups = groups_by_name(backbone, constructor(backbone))
    no_decay = {name for name, group in groups.items() if group['weight_decay'] == 0.}
    assert no_decay == backbone.no_weight_decay() == {
        name for name, _ in backbone.named_parameters() if name.endswith('.rel_pos_table')}
    assert no_decay and {group['lr'] for group in groups.values()} == {1e-3}
