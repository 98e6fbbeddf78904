"""Checkpoints saved before the shared-layers refactor (commit 5d88427) still load strictly and give
the same outputs; every named arch keeps its checkpoint keys and shapes."""
import hashlib
import json
import os.path as osp

import pytest
import torch

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


@pytest.mark.parametrize('key', sorted(DIGESTS))
def test_named_arch_keeps_keys_and_shapes(key):
    name, arch = key.split('/')
    items = sorted((k, tuple(v.shape)) for k, v in build(name, arch, 'meta').state_dict().items())
    assert hashlib.sha256(repr(items).encode()).hexdigest() == DIGESTS[key]
