"""Our backbones as timm models: features_only maps equal our backbone's, timm's (>= 1.0) model
API, official checkpoints through ``pretrained_cfg_overlay`` (the rule tables and the safe loader),
crafted pickles refused, and no timm name replaced."""
import os

import pytest
import timm
import torch
from test_checkpoint_safety import Call
from test_converter import to_official as groupmixformer_official
from test_flatten import OFFICIAL_PARAMS as FLATTEN_PARAMS
from test_flatten import TINY as FLATTEN_TINY
from test_flatten import to_official as flatten_official
from test_groupmixformer import OFFICIAL_PARAMS as GROUPMIXFORMER_PARAMS
from test_sgformer import OFFICIAL_PARAMS as SGFORMER_PARAMS
from test_sgformer import TINY as SGFORMER_TINY
from test_sgformer import to_official as sgformer_official
from test_unified import OFFICIAL_PARAMS as UNIFIED_PARAMS
from test_unified import to_official as unified_official

from groupmix_backbones import zoo
from groupmix_backbones.converters import FLATTEN, GROUPMIXFORMER, SGFORMER, STM
from groupmix_backbones.safe_checkpoint import UnsafeCheckpointError
from groupmix_backbones.registry import BACKBONES
from groupmix_backbones.timm_models import (TIMM_MODELS, NameClashError, register_timm_model,
                                            register_timm_models)

CLASSES = {cls.__name__: cls for cls in BACKBONES}
# the smallest registered model of every backbone class
SMALLEST = {'GroupMixFormer': 'groupmixformer_mini', 'FLattenPVT': 'flatten_pvt_tiny',
            'FLattenPVTv2': 'flatten_pvt_v2_b0', 'FLattenSwin': 'flatten_swin_tiny',
            'FLattenCSWin': 'flatten_cswin_tiny', 'SGFormer': 'sgformer_s',
            'UnifiedHaloNet': 'unified_halo_micro', 'UnifiedPVT': 'unified_pvt_micro',
            'UnifiedSwin': 'unified_swin_micro', 'UnifiedConvNeXt': 'unified_convnext_micro',
            'UnifiedInternImage': 'unified_dcn_v3_micro'}
# the seeds' attentions as unified mixers: new models, no official checkpoints or counts
NEW_MODELS = {'UnifiedGroupMix': 'unified_groupmix_micro', 'UnifiedFLatten': 'unified_flatten_micro'}
UNIFIED_MIXERS = {'UnifiedHaloNet': 'halo', 'UnifiedPVT': 'pvt', 'UnifiedSwin': 'swin',
                  'UnifiedConvNeXt': 'convnext', 'UnifiedInternImage': 'dcnv3'}


def test_every_backbone_class_and_arch_is_registered():
    assert set(SMALLEST) | set(NEW_MODELS) == set(CLASSES)
    registered = {(model.backbone, model.arch) for model in TIMM_MODELS.values()}
    for cls in BACKBONES:
        assert {(cls.__name__, arch) for arch in cls.arch_zoo} <= registered, cls.__name__
    for name in TIMM_MODELS:
        assert timm.is_model(name) and timm.models.get_arch_name(name) == name
    assert {'flatten_pvt_v2_b0', 'sgformer_s', 'unified_dcn_v3_micro', 'groupmixformer_large',
            'flatten_swin_base_384', 'flatten_cswin_base_384'} <= set(timm.list_models())
    assert len(timm.list_models('unified_*')) == 20 + 4 * len(NEW_MODELS)


def test_every_registered_model_has_the_official_classifiers_parameters():
    """Counted on the meta device (fast); FLatten-PVT's official count includes a final norm
    (2 x 512) that its forward never applies and that we do not build."""
    official = {'GroupMixFormer': GROUPMIXFORMER_PARAMS, 'SGFormer': SGFORMER_PARAMS,
                **{cls.__name__: counts for cls, counts in FLATTEN_PARAMS.items()},
                **{cls: UNIFIED_PARAMS[mixer] for cls, mixer in UNIFIED_MIXERS.items()}}
    for name, model in TIMM_MODELS.items():
        if model.backbone in NEW_MODELS:
            continue
        with torch.device('meta'):
            params = sum(p.numel() for p in timm.create_model(name).parameters())
        unused = 2 * 512 if model.backbone == 'FLattenPVT' else 0
        assert params + unused == official[model.backbone][model.arch], name


@pytest.mark.parametrize('name', [*SMALLEST.values(), *NEW_MODELS.values()])
def test_features_only_equals_our_backbone(name):
    torch.manual_seed(0)
    features = timm.create_model(name, features_only=True, out_indices=(1, 3)).eval()
    model = TIMM_MODELS[name]
    backbone = CLASSES[model.backbone](arch=model.arch, out_indices=(1, 3)).eval()
    backbone.load_state_dict(features.model.backbone.state_dict(), strict=True)
    assert features.feature_info.channels() == backbone.out_channels
    assert features.feature_info.reduction() == [8, 32]
    x = torch.randn(2, 3, 61, 75)
    with torch.no_grad():
        got, expected = features(x), backbone(x)
    assert len(got) == len(expected) == 2
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('name', SMALLEST.values())
def test_timm_model_api(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        logits = model(x)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        first = model.forward_intermediates(x, indices=[0], stop_early=True,
                                            intermediates_only=True)
    torch.testing.assert_close(final, features)
    assert [m.shape[1] for m in maps] == [info['num_chs'] for info in model.feature_info]
    assert [m.shape[-1] for m in maps] == [64 // info['reduction'] for info in model.feature_info]
    assert features.shape[1] == model.num_features
    assert pre_logits.shape == (1, model.head_hidden_size) and logits.shape == (1, 7)
    torch.testing.assert_close(logits, model.get_classifier()(pre_logits))
    torch.testing.assert_close(last_two[1], maps[3])
    torch.testing.assert_close(first[0], maps[0])
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), pre_logits)
    model.reset_classifier(0, '')
    assert model(x).dim() == 4
    names = dict(model.named_parameters())
    assert model.no_weight_decay() <= set(names)


def test_pretrained_cfgs_follow_the_official_pipelines():
    data = timm.data.resolve_data_config(model=timm.create_model('sgformer_s'))
    assert (data['crop_pct'], data['interpolation']) == (0.9, 'bicubic')
    assert data['mean'] == timm.data.IMAGENET_DEFAULT_MEAN
    cfg = timm.models.get_pretrained_cfg('flatten_swin_base_384')
    assert (cfg.input_size, cfg.crop_pct, cfg.pool_size) == ((3, 384, 384), 1.0, (12, 12))
    assert timm.models.get_pretrained_cfg('flatten_cswin_base_384').crop_pct == 0.875
    assert timm.models.get_pretrained_cfg('unified_dcn_v3_tiny').url == (
        'https://github.com/OpenGVLab/STM-Evaluation/releases/download/cls-ckpt/'
        'unified_internimage_tiny.pth')
    assert timm.models.get_pretrained_cfg('flatten_pvt_v2_b0').url[0].startswith(
        'https://cloud.tsinghua.edu.cn/')
    assert 'unified_swin_micro' in timm.list_models(pretrained=True)
    assert 'groupmixformer_small' not in timm.list_models(pretrained=True)  # a page, not a file
    with pytest.raises(RuntimeError, match=r'Download it and pass pretrained_cfg_overlay'):
        timm.create_model('groupmixformer_small', pretrained=True)


# ---------------------------------------------------------------- official checkpoints
# per class: (official layout of a timm model's state dict, its rule table, timm kwargs making
# it small); the official layouts are the converter tests', written independently of the rules
def _keywise(to_official):
    return lambda state: {to_official(key): value for key, value in state.items()}


OFFICIAL = {
    'GroupMixFormer': (_keywise(groupmixformer_official), GROUPMIXFORMER, {}),
    'SGFormer': (_keywise(sgformer_official), SGFORMER,
                 dict(arch=SGFORMER_TINY, pretrain_img_size=64)),
    **{cls.__name__: (_keywise(lambda key, host=cls.__name__: flatten_official(host, key)),
                      FLATTEN, dict(arch=arch)) for cls, arch in FLATTEN_TINY.items()},
    **{backbone: (lambda state, mixer=mixer: unified_official(mixer, state), STM, {})
       for backbone, mixer in UNIFIED_MIXERS.items()},
}


def _official_checkpoint(name, path, num_classes=10):
    """A timm model with random weights and its state dict saved in the official layout."""
    to_official, fmt, small = OFFICIAL[TIMM_MODELS[name].backbone]
    torch.manual_seed(0)
    source = timm.create_model(name, num_classes=num_classes, **small).eval()
    with torch.no_grad():
        for param in source.parameters():  # layer scales, offsets, tables: away from their init
            param.add_(0.05 * torch.randn_like(param))
    torch.save({'model': to_official(source.state_dict())}, path)
    return source, fmt, small


@pytest.mark.parametrize('name', SMALLEST.values())
def test_official_checkpoint_loads_through_timm(name, tmp_path):
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    source, fmt, small = _official_checkpoint(name, src)
    model = timm.create_model(name, pretrained=True, num_classes=10,
                              pretrained_cfg_overlay=dict(file=str(src)), **small).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))
    fmt.main([str(src), str(dst)])  # the same weights as converting offline
    offline = torch.load(dst, weights_only=True)['state_dict']
    loaded = model.state_dict()
    assert set(offline) == set(loaded)
    for key, value in offline.items():
        torch.testing.assert_close(loaded[key], value, msg=key)


def test_official_checkpoint_of_another_width_head_or_family(tmp_path):
    src = tmp_path / 'official.pth'
    source, _, _ = _official_checkpoint('unified_swin_micro', src)
    x = torch.randn(1, 3, 64, 64)
    for num_classes in (0, 5):  # the backbone and neck load; the classifier is new
        model = timm.create_model('unified_swin_micro', pretrained=True, num_classes=num_classes,
                                  pretrained_cfg_overlay=dict(file=str(src))).eval()
        with torch.no_grad():
            torch.testing.assert_close(model.forward_head(model.forward_features(x), True),
                                       source.forward_head(source.forward_features(x), True))
    gray = timm.create_model('unified_swin_micro', pretrained=True, in_chans=1,
                             pretrained_cfg_overlay=dict(file=str(src)))
    stem = 'backbone.patch_embed.conv1.proj.weight'  # timm's adapt_input_conv: RGB summed
    torch.testing.assert_close(gray.state_dict()[stem],
                               source.state_dict()[stem].sum(1, keepdim=True))
    with pytest.raises(KeyError, match=r'official UnifiedSwin checkpoint .* this model is a '
                       r'UnifiedPVT'):
        timm.create_model('unified_pvt_micro', pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(src)))
    with pytest.raises(ValueError, match=r'does not fit UnifiedSwin\(arch=.tiny.\)'):
        timm.create_model('unified_swin_tiny', pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(src)))


def test_in_memory_official_state_dict_converts():
    source = timm.create_model('unified_convnext_micro').eval()
    official = unified_official('convnext', source.state_dict())
    model = timm.create_model('unified_convnext_micro', pretrained=True,
                              pretrained_cfg_overlay=dict(state_dict=official)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))


@pytest.mark.parametrize('source', ['file', 'url', 'file with custom_load=False'])
def test_crafted_pickle_is_refused(source, tmp_path):
    """An official checkpoint carrying a payload (``touch marker`` on unpickling) is refused by our
    safe loader whichever way timm is given it; nothing runs."""
    src, marker = tmp_path / 'official.pth', tmp_path / 'marker'
    _official_checkpoint('groupmixformer_mini', src)
    checkpoint = torch.load(src, weights_only=True)
    checkpoint['epoch'] = Call(os.system, f'touch {marker}')
    evil = tmp_path / 'evil.pth'
    torch.save(checkpoint, evil)
    overlay = {'file': dict(file=str(evil)),
               'url': dict(url=(evil.as_uri(), 'evil.pth')),
               'file with custom_load=False': dict(file=str(evil), custom_load=False)}[source]
    with pytest.raises(UnsafeCheckpointError, match=r"Refused to load checkpoint .*evil\.pth.*"
                       r"asks for .*system"):
        timm.create_model('groupmixformer_mini', pretrained=True, num_classes=10,
                          pretrained_cfg_overlay=overlay, cache_dir=str(tmp_path / 'cache'))
    assert not marker.exists()


# ---------------------------------------------------------------- names timm already has
def test_a_name_timm_has_is_not_replaced():
    resnet18 = timm.models.model_entrypoint('resnet18')
    cfg = timm.models.get_pretrained_cfg('resnet18')
    with pytest.raises(NameClashError, match=r"timm already has a model named 'resnet18' "
                       r"\(timm.models.resnet\); groupmix_backbones does not replace it"):
        register_timm_model('resnet18')
    with pytest.warns(UserWarning, match="timm already has a model named 'resnet18'"):
        register_timm_models(['resnet18'])
    assert timm.models.model_entrypoint('resnet18') is resnet18
    assert timm.models.get_pretrained_cfg('resnet18') == cfg
    register_timm_model('sgformer_s')  # ours already: nothing to do, no error


def test_weights_come_from_the_zoo_catalogue():
    """One catalogue of official weights: every registration's file or download page is zoo's."""
    for name, model in TIMM_MODELS.items():
        url = model.cfg['url'][0] if isinstance(model.cfg['url'], tuple) else model.cfg['url']
        page = model.cfg['origin_url'] if model.cfg.get('notes') else None
        assert (url or page) == zoo.MODELS.get((model.backbone, model.arch), {}).get('weights')
        assert not (url and page), name


def test_first_conv_is_the_models_own():
    """The conv ``in_chans`` adapts is found in the model (no name restated per family); an
    in-memory official state dict is adapted through it."""
    source = timm.create_model('unified_convnext_micro').eval()
    assert source.first_conv == 'backbone.patch_embed.conv1.proj'
    assert timm.create_model('groupmixformer_mini').first_conv == 'backbone.stem.0.conv'
    official = unified_official('convnext', source.state_dict())
    model = timm.create_model('unified_convnext_micro', pretrained=True, in_chans=2,
                              pretrained_cfg_overlay=dict(state_dict=official))
    stem = 'backbone.patch_embed.conv1.proj.weight'
    assert model.state_dict()[stem].shape[1] == 2
