"""Checkpoints saved before the shared-layers refactor (commit 5d88427) still load strictly and give
the same outputs; every named arch keeps its checkpoint keys and shapes."""
import hashlib
import json
import os.path as osp
import re

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict

import groupmix_backbones
from conftest import REPO

DATA = osp.join(REPO, 'tests', 'data')
SAVED = torch.load(osp.join(DATA, 'main-5d88427_backbones.pt'), weights_only=True)
DIGESTS = json.load(open(osp.join(DATA, 'main-5d88427_state_keys.json')))


def build(name, arch, device='cpu'):
    cls = getattr(groupmix_backbones, name)
    if isinstance(arch, dict) and isinstance(arch.get('embed_dims'), int):
        # saved when FLatten-Swin/CSWin took the stage-1 width (doubled per stage)
        widths = [arch['embed_dims'] * 2 ** i for i in range(len(arch['depths']))]
        arch = dict(arch, embed_dims=widths)
    kwargs = {} if name == 'FLattenPVTv2' else dict(final_norm=True)
    with torch.device(device):
        return cls(arch=arch, **kwargs)


@pytest.mark.parametrize('name', sorted(SAVED))
def test_old_checkpoint_loads_strictly_with_same_outputs(name):
    saved = SAVED[name]
    model = build(name, saved['arch']).eval()
    model.load_state_dict(saved['state_dict'], strict=True)
    with torch.no_grad():
        outs = model(saved['input'])
    for new, old in zip(outs, saved['outputs'], strict=True):
        torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', sorted(SAVED))
def test_old_checkpoint_without_metadata_loads_through_mmengine(name):
    """A state dict without ``_metadata`` (converted, timm's, mmengine's loads by prefix) is read
    as of the first key version, in mmengine's loader as in torch's."""
    saved = SAVED[name]
    model = build(name, saved['arch']).eval()
    load_state_dict(model, dict(saved['state_dict']), strict=True)
    with torch.no_grad():
        outs = model(saved['input'])
    for new, old in zip(outs, saved['outputs'], strict=True):
        torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)


def first_version_key(name, key):
    """A key of ours as the first key version named it (before each family's renames), written
    here independently of the renames: GroupMixFormer kept its patch embeddings in
    ``patch_embeds`` and its blocks as the items of each stage."""
    if name == 'GroupMixFormer':
        key = re.sub(r'^stages\.(\d+)\.downsample\.', r'patch_embeds.\1.', key)
        key = re.sub(r'^stages\.(\d+)\.blocks\.', r'stages.\1.', key)
    return key


@pytest.mark.parametrize('key', sorted(DIGESTS))
def test_named_arch_keeps_keys_and_shapes(key):
    """The keys and shapes of every named arch, as of the first key version, are those pinned."""
    name, arch = key.split('/')
    items = sorted((first_version_key(name, k), tuple(v.shape))
                   for k, v in build(name, arch, 'meta').state_dict().items())
    assert hashlib.sha256(repr(items).encode()).hexdigest() == DIGESTS[key]


def test_current_keys_load_and_save_their_version():
    """A checkpoint saved now carries its key version and reloads strictly, with and without its
    metadata (the renames leave current keys alone)."""
    saved = SAVED['GroupMixFormer']
    model = build('GroupMixFormer', saved['arch']).eval()
    model.load_state_dict(saved['state_dict'], strict=True)
    state = model.state_dict()
    assert state._metadata['']['version'] == type(model)._version == 2
    assert 'stages.0.downsample.proj.pointwise.weight' in state and \
        'stages.2.blocks.0.cpe.weight' in state
    for source in (state, dict(state)):
        again = build('GroupMixFormer', saved['arch']).eval()
        again.load_state_dict(source, strict=True)
        with torch.no_grad():
            for new, old in zip(again(saved['input']), saved['outputs'], strict=True):
                torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
