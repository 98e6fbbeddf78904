import math

import pytest
import torch
from mmengine.registry import DefaultScope

import groupmix_backbones  # noqa: F401
from groupmix_backbones import GroupMixFormer

TINY = dict(embed_dims=[40, 40, 80, 80], depths=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2])


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_registered_in_every_scope(scope):
    registry = {'mmpretrain': 'mmpretrain.registry', 'mmdet': 'mmdet.registry',
                'mmseg': 'mmseg.registry'}[scope]
    models = __import__(registry, fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(dict(type='GroupMixFormer', arch=TINY))
    assert isinstance(model, GroupMixFormer)
    assert models.get(f'{scope}.GroupMixFormer') is GroupMixFormer


@pytest.mark.parametrize('arch', ['mini', 'tiny', 'small', 'base', 'large'])
def test_every_arch_any_size(arch):
    model = GroupMixFormer(arch=arch).eval()
    H, W = 37, 53
    with torch.no_grad():
        outs = model(torch.randn(1, 3, H, W))
    dims = GroupMixFormer.arch_zoo[arch]['embed_dims']
    for out, stride, dim in zip(outs, (4, 8, 16, 32), dims):
        assert out.shape == (1, dim, math.ceil(H / stride), math.ceil(W / stride))


def test_odd_large_input_and_out_indices():
    model = GroupMixFormer(arch=TINY, out_indices=(1, -1)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 333, 517))
    assert [o.shape[-2:] for o in outs] == [(42, 65), (11, 17)]


def test_errors_say_what_is_valid():
    with pytest.raises(KeyError, match='Valid names: mini, tiny, small, base, large'):
        GroupMixFormer(arch='huge')
    with pytest.raises(KeyError, match=r"missing \['depths', 'mlp_ratios'\]"):
        GroupMixFormer(arch=dict(embed_dims=[40] * 4))
    with pytest.raises(ValueError, match=r'in \[-4, 3\]'):
        GroupMixFormer(arch=TINY, out_indices=(0, 4))
    with pytest.raises(ValueError, match='divisible by 5'):
        GroupMixFormer(arch=dict(TINY, embed_dims=[48, 48, 80, 80]))


def test_frozen_stages_and_norm_eval():
    model = GroupMixFormer(arch=TINY, frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.stem, model.patch_embeds[0], model.stages[0], model.patch_embeds[1],
              model.stages[1]]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[2][0].training  # only BatchNorm layers are kept in eval mode
    assert not model.patch_embeds[2].norm.training
    before = [p.clone() for p in model.stages[0].parameters()]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.stages[0].parameters()))


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = GroupMixFormer(arch=TINY).train()
    checkpointed = GroupMixFormer(arch=TINY, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 48, 48)
    for model in (plain, checkpointed):
        sum(o.square().mean() for o in model(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_final_norm_applies_to_last_output_only():
    model = GroupMixFormer(arch=TINY, final_norm=True).eval()
    plain = GroupMixFormer(arch=TINY).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), plain(x)
    torch.testing.assert_close(a[2], b[2])
    torch.testing.assert_close(a[3], model.out_norm(b[3]))
