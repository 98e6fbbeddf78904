"""The contract every registered backbone keeps, checked for every class and every named arch.

A new family gets these checks by registering with ``register_backbone``. Forwards use each arch's
settings with one block per stage (full widths, windows, heads); the full archs build on the meta
device.
"""
import inspect
import math

import pytest
import torch
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

import groupmix_backbones  # noqa: F401
from groupmix_backbones.models import UnifiedBackbone
from groupmix_backbones.models.base import TokenStage
from groupmix_backbones.registry import BACKBONES, MIXERS

ARCHS = [(cls, name) for cls in BACKBONES for name in cls.arch_zoo]
IDS = [f'{cls.__name__}-{name}' for cls, name in ARCHS]
SIZES = [(33, 65), (97, 131), (224, 224)]
SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def one_block_arch(cls, name):
    arch = dict(cls.arch_zoo[name])
    arch['depths'] = [1] * len(arch['depths'])
    return arch


def build(cls, name, **kwargs):
    if 'final_norm' in inspect.signature(cls).parameters and 'last' in cls.norm_places:
        kwargs.setdefault('final_norm', True)  # output norms are part of the contract
    torch.manual_seed(0)
    return cls(arch=one_block_arch(cls, name), **kwargs)


def expected_hw(H, W):
    return [(math.ceil(H / s), math.ceil(W / s)) for s in (4, 8, 16, 32)]


def test_every_family_is_covered():
    names = {cls.__name__ for cls in BACKBONES}
    assert {'GroupMixFormer', 'FLattenPVT', 'FLattenPVTv2', 'FLattenSwin', 'FLattenCSWin'} <= names
    assert all(cls.arch_zoo for cls in BACKBONES)


@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_full_arch_builds_on_meta(cls, name):
    with torch.device('meta'):
        model = cls(arch=name, drop_path_rate=0.1)
    assert all(p.is_meta for p in model.parameters())
    assert len(model.embed_dims) == model.num_stages == len(model.arch_settings['depths'])


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_builds_in_every_scope(cls, name, scope):
    models = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(dict(type=cls.__name__, arch=one_block_arch(cls, name)))
    assert type(model) is cls


@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_any_size_gives_strides_4_to_32(cls, name):
    model = build(cls, name).eval()
    assert model.out_channels == model.embed_dims
    assert [f['num_chs'] for f in model.feature_info] == model.embed_dims
    assert [f['reduction'] for f in model.feature_info] == [4, 8, 16, 32]
    for H, W in SIZES:
        with torch.no_grad():
            outs = model(torch.randn(2, 3, H, W))
        assert [tuple(o.shape[2:]) for o in outs] == expected_hw(H, W), (H, W)
        assert [o.shape[1] for o in outs] == model.embed_dims
        assert all(o.shape[0] == 2 and o.isfinite().all() for o in outs)
        assert all(o.is_contiguous() for o in outs)  # what mmcv's compiled ops assume
    model = build(cls, name, out_indices=(1, -1)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 45, 37))
    assert [tuple(o.shape[1:]) for o in outs] == [
        (model.embed_dims[i], *expected_hw(45, 37)[i]) for i in (1, 3)]


def upstream_parameters(cls, name, stage):
    """Names of the parameters that the output of ``stage`` (0-based) depends on, found by
    autograd on an unfrozen model (independently of the class's own notion of its stem)."""
    model = build(cls, name).train()
    outs = model(torch.randn(2, 3, 33, 65))
    outs[stage].sum().backward()
    return {n for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_frozen_stages(cls, name):
    for k in (1, len(cls.arch_zoo[name]['depths'])):
        model = build(cls, name, frozen_stages=k)
        model.train()
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        everything = {n for n, _ in model.named_parameters()}
        expected = everything if k == model.num_stages else upstream_parameters(cls, name, k - 1)
        assert frozen == expected, (k, sorted(frozen ^ expected)[:5])
        for module_name, module in model.named_modules():
            own = list(module.parameters(recurse=False))
            if own and all(not p.requires_grad for p in own):
                assert not module.training, (k, module_name)
            elif own:
                assert module.training, (k, module_name)


def norm_image(norm, image):
    """``norm`` applied to a (B, C, H, W) map: LayerNorms over channels, others as they are."""
    if isinstance(norm, torch.nn.LayerNorm):
        return norm(image.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return norm(image)


@pytest.mark.parametrize('cls', [cls for cls in BACKBONES
                                 if 'norm_outputs' in inspect.signature(cls).parameters],
                         ids=lambda c: c.__name__)
def test_norm_outputs_norm_every_returned_map_and_freeze_with_their_stage(cls):
    name = next(iter(cls.arch_zoo))
    if 'outputs' not in cls.norm_places:
        with pytest.raises(ValueError, match='has no norm_outputs: every stage ends in its own'):
            build(cls, name, norm_outputs=True)
        return
    no_final_norm = {}
    if 'final_norm' in inspect.signature(cls).parameters:  # (the unified family has none)
        with pytest.raises(ValueError, match='final_norm and norm_outputs are exclusive'):
            build(cls, name, norm_outputs=True)  # build turns final_norm on
        no_final_norm = dict(final_norm=False)
    indices = (0, 2, 3)
    model = build(cls, name, norm_outputs=True, out_indices=indices, frozen_stages=2,
                  **no_final_norm)
    assert sorted(model.output_norms) == ['0', '2', '3']
    for norm in model.output_norms.values():
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    plain = build(cls, name, out_indices=indices, **no_final_norm)
    assert not plain.load_state_dict(model.state_dict(), strict=False).missing_keys
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        normed, raw = model.eval()(x), plain.eval()(x)
    for index, a, b in zip(indices, normed, raw):
        torch.testing.assert_close(a, norm_image(model.output_norms[str(index)], b))
    model.train()  # frozen_stages=2: stages 0 and 1, so the first output's norm
    assert [model.output_norms[i].training for i in '023'] == [False, True, True]
    assert [model.output_norms[i].weight.requires_grad for i in '023'] == [False, True, True]


@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_norm_eval_keeps_batch_norms_in_eval(cls, name):
    model = build(cls, name, norm_eval=True).train()
    for module_name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            assert not module.training, module_name
        elif list(module.parameters(recurse=False)):
            assert module.training, module_name


@pytest.mark.parametrize('cls,name', ARCHS, ids=IDS)
def test_with_cp_gives_same_outputs_and_gradients(cls, name):
    plain = build(cls, name).train()
    checkpointed = build(cls, name, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 37, 45)
    results = []
    for model in (plain, checkpointed):
        torch.manual_seed(1)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    for n, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[n], rtol=1e-4, atol=1e-5, msg=n)


@pytest.mark.parametrize('cls', BACKBONES, ids=lambda c: c.__name__)
def test_bad_inputs_and_options_say_what_is_valid(cls):
    name = next(iter(cls.arch_zoo))
    model = build(cls, name).eval()
    for bad in (torch.randn(3, 33, 65), torch.randn(0, 3, 33, 65), torch.randn(1, 4, 33, 65)):
        with pytest.raises(ValueError, match=r'expects images \(batch >= 1, 3, H, W\)'):
            model(bad)
    with pytest.raises(KeyError, match='Valid names: ' + ', '.join(cls.arch_zoo)):
        cls(arch='no-such-arch')
    arch = one_block_arch(cls, name)
    with pytest.raises(KeyError, match=r"unknown \['depth'\].*Required keys"):
        cls(arch=dict(arch, depth=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match='one value per stage'):
        cls(arch=dict(arch, depths=[1, 1, 1]))
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r'drop_path_rate must be in \[0, 1\]'):
            cls(arch=arch, drop_path_rate=rate)
    with pytest.raises(ValueError, match=r'in \[-4, 3\]'):
        cls(arch=arch, out_indices=(0, 4))
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in \[-1, 4\]'):
        cls(arch=arch, frozen_stages=5)


@pytest.mark.parametrize('cls', BACKBONES, ids=lambda c: c.__name__)
def test_stages_run_themselves(cls):
    """Every stage is a :class:`TokenStage` (its modules registered under it: what ``.to``,
    ``parameters`` and ``deepcopy`` see) whose forward takes NHWC maps and returns NHWC maps; the
    stem and the stages chained give the maps the backbone returns."""
    model = build(cls, next(iter(cls.arch_zoo))).eval()
    assert all(isinstance(stage, TokenStage) for stage in model.stages)
    x = torch.randn(2, 3, 45, 37)
    with torch.no_grad():
        outs = model(x)
        maps = model.forward_stem(x)
        for i, stage in enumerate(model.stages):
            maps = stage(maps)
            assert (maps.shape[0], maps.shape[3], *maps.shape[1:3]) == \
                (2, model.embed_dims[i], *expected_hw(45, 37)[i])
            assert torch.equal(model.stage_output(i, maps), outs[i])


@pytest.mark.parametrize('cls', BACKBONES, ids=lambda c: c.__name__)
def test_forward_intermediates_as_timm_and_out_indices_stop_early(cls):
    """timm's ``forward_intermediates`` contract; a backbone returning stages 1-3 never runs stage
    4, whose parameters are frozen (distributed training would wait for their gradients)."""
    name = next(iter(cls.arch_zoo))
    model = build(cls, name).eval()
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        outs = model(x)
        for indices, expected in [(None, outs), (2, outs[2:]), ([0, -1], outs[::3])]:
            maps = model.forward_intermediates(x, indices, intermediates_only=True)
            assert all(torch.equal(a, b) for a, b in zip(maps, expected, strict=True)), indices
        final, maps = model.forward_intermediates(x, [1])
        assert torch.equal(final, outs[-1]) and torch.equal(maps[0], outs[1])
        final, maps = model.forward_intermediates(x, [1], stop_early=True)
        assert torch.equal(final, outs[1]) and torch.equal(maps[0], outs[1])
    with pytest.raises(ValueError, match='valid|stages'):
        model.forward_intermediates(x, 5)

    model = build(cls, name, out_indices=(0, 1, 2)).train()
    last_stage = model.frozen_groups()[-1]
    last_stage = last_stage if isinstance(last_stage, (list, tuple)) else [last_stage]
    ran = []
    for module in last_stage:
        module.register_forward_pre_hook(lambda *args: ran.append(True))
    outs = model(x)
    sum(o.mean() for o in outs).backward()
    assert len(outs) == 3 and not ran
    assert all(not p.requires_grad for module in last_stage for p in module.parameters())
    first_stage = model.frozen_groups()[1]
    first_stage = first_stage if isinstance(first_stage, (list, tuple)) else [first_stage]
    assert all(p.grad is not None for module in first_stage for p in module.parameters())


# ---------------------------------------------------------------- every registered mixer
def mixer_example(name):
    """``(arch, mixer)`` of a one-block UnifiedBackbone around the registered mixer ``name``: the
    widths and settings of the released class built around it (micro), else the family's micro
    widths and the mixer's defaults (a user's mixer)."""
    for cls in BACKBONES:
        if issubclass(cls, UnifiedBackbone):
            with torch.device('meta'):
                model = cls(arch=one_block_arch(cls, 'micro'))
            if model.mixer['type'] == name:
                return dict(embed_dims=model.embed_dims, depths=[1] * 4), model.mixer
    return one_block_arch(UnifiedBackbone, 'micro'), dict(type=name)


MIXER_NAMES = sorted(MIXERS.module_dict)


def build_around(name, **kwargs):
    arch, mixer = mixer_example(name)
    torch.manual_seed(0)
    return UnifiedBackbone(arch=arch, mixer=mixer, **kwargs)


def test_every_mixer_is_registered():
    assert {'HaloAttention', 'SpatialReductionAttention', 'ShiftedWindowAttention',
            'DepthwiseConvMixer', 'DCNv3', 'GroupMixAttention', 'FocusedLinearMixer'} <= \
        set(MIXER_NAMES)


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name', MIXER_NAMES)
def test_mixer_builds_in_every_scope(name, scope):
    arch, mixer = mixer_example(name)
    models = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(dict(type='UnifiedBackbone', arch=arch, mixer=mixer))
    assert type(model) is UnifiedBackbone
    assert all(type(block.attn) is MIXERS.get(name)
               for stage in model.stages for block in stage.blocks)


@pytest.mark.parametrize('name', MIXER_NAMES)
def test_mixer_any_size_frozen_stages_and_forward_intermediates(name):
    model = build_around(name).eval()
    for H, W in SIZES[:2]:
        with torch.no_grad():
            outs = model(torch.randn(2, 3, H, W))
        assert [tuple(o.shape[2:]) for o in outs] == expected_hw(H, W), (H, W)
        assert [o.shape[1] for o in outs] == model.embed_dims
        assert all(o.isfinite().all() and o.is_contiguous() for o in outs)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        outs = model(x)
        maps = model.forward_intermediates(x, [0, -1], intermediates_only=True)
        final, last = model.forward_intermediates(x, [1], stop_early=True)
    assert torch.equal(maps[0], outs[0]) and torch.equal(maps[1], outs[3])
    assert torch.equal(final, outs[1]) and torch.equal(last[0], outs[1])

    model = build_around(name, frozen_stages=2).train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    prefixes = ('patch_embed.', 'stages.0.', 'stages.1.')
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith(prefixes)}
    assert not model.stages[1].training and model.stages[2].training
    outs = model(torch.randn(2, 3, 33, 65))
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for n, p in model.named_parameters()
               if n.startswith('stages.3.') and p.requires_grad)


def test_a_list_of_one_value_per_stage_is_taken_per_stage():
    model = UnifiedBackbone(arch=dict(embed_dims=[32, 64, 128, 256], depths=[1, 2, 1, 1]),
                            mixer=dict(type='ShiftedWindowAttention', num_heads=[1, 2, 4, 8],
                                       window_size=[7, 5, 3, 2]))
    attns = [[block.attn for block in stage.blocks] for stage in model.stages]
    assert [a[0].num_heads for a in attns] == [1, 2, 4, 8]
    assert [a[0].window_size for a in attns] == [7, 5, 3, 2]
    with pytest.raises(KeyError, match=r"needs mixer=dict\(type=<a registered mixer>.*Registered "
                                       r"mixers: .*DCNv3.*custom_imports"):
        UnifiedBackbone(arch='micro', mixer=dict(type='NoSuchMixer'))
    with pytest.raises(KeyError, match='Registered mixers'):
        UnifiedBackbone(arch='micro')
    with pytest.raises(TypeError, match=r'could not build its mixer DepthwiseConvMixer.*stage 0.*'
                                        r'Its settings: \(dim: int, \*, kernel_size: int = 7\)'):
        UnifiedBackbone(arch='micro', mixer=dict(type='DepthwiseConvMixer', kernel=3))


@pytest.mark.parametrize('cls_name', ['UnifiedHaloNet', 'UnifiedInternImage', 'UnifiedGroupMix',
                                      'UnifiedFLatten'])
def test_released_classes_are_names_over_the_mixer_mechanism(cls_name):
    """A named class computes what UnifiedBackbone computes around its mixer, with the same keys."""
    cls = next(c for c in BACKBONES if c.__name__ == cls_name)
    named = build(cls, 'micro').eval()
    generic = UnifiedBackbone(arch=dict(embed_dims=named.embed_dims, depths=[1] * 4),
                              mixer=named.mixer).eval()
    generic.load_state_dict(named.state_dict(), strict=True)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        for a, b in zip(named(x), generic(x), strict=True):
            torch.testing.assert_close(a, b)


def test_a_named_class_takes_mixer_settings_over_its_own():
    cls = next(c for c in BACKBONES if c.__name__ == 'UnifiedSwin')
    model = cls(arch=dict(cls.arch_zoo['micro'], depths=[2, 1, 1, 1]), mixer=dict(window_size=5))
    blocks = model.stages[0].blocks
    assert [b.attn.window_size for b in blocks] == [5, 5]
    assert [b.attn.shifted for b in blocks] == [False, True]  # its per-block setting kept
