"""Official checkpoints load as they are: an official STM-Evaluation classifier or Mask R-CNN 1x
detector (made here in the official layout) loads through init_cfg, mmengine's load_checkpoint, a
Runner's load_from and the mmdet/mmpretrain APIs, converted in memory (logged) to exactly what the
offline converter writes; a crafted pickle is refused on each of these paths; a checkpoint of
another arch says which arch it holds."""
import json
import os

import pytest
import torch
from mmdet.apis import DetInferencer, init_detector
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.apis import init_model as init_classifier

import groupmix_backbones  # noqa: F401
from conftest import REPO, load_tool
from groupmix_backbones import UnifiedSwin
from groupmix_backbones.converters import (DETECTION_RESULTS, STM, STM_DETECTION,
                                           ConversionError)
from groupmix_backbones.models import CheckpointMismatchError
from groupmix_backbones.safe_checkpoint import UnsafeCheckpointError
from test_checkpoint_safety import Call
from test_loading import Records
from test_tasks import DEMOS, short_run_options
from test_unified import MIXERS, build_classifier, classifier_cfg, to_official

DET_CONFIG = os.path.join(REPO, 'mmdet_cfgs/unified/mask-rcnn_unified-swin-micro_fpn_1x_coco.py')
COCO_CLASSES = tuple(f'class{i}' for i in range(80))


def perturbed(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():  # layer scales, tables, norms: away from their init
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def logged(load):
    """``load()``'s result and the log lines it wrote."""
    logger, records = MMLogger.get_current_instance(), Records()
    logger.addHandler(records)
    try:
        return load(), '\n'.join(records.messages)
    finally:
        logger.removeHandler(records)


def assert_same_state(model, expected, prefix=''):
    state = {prefix + key: value for key, value in model.state_dict().items()}
    assert set(state) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


@pytest.fixture(scope='module')
def official_classifier(tmp_path_factory):
    """(source classifier, official checkpoint path, official key count, offline conversion)."""
    root = tmp_path_factory.mktemp('classifier')
    source = perturbed(build_classifier('swin', 'micro', num_classes=10))
    official = to_official('swin', source.state_dict())
    src, dst = str(root / 'unified_swin_micro.pth'), str(root / 'converted.pth')
    torch.save({'model': official, 'epoch': 299}, src)
    STM.main([src, dst])
    return source, src, len(official), torch.load(dst, weights_only=True)['state_dict']


def test_classifier_loads_on_every_path_as_offline_conversion(official_classifier, tmp_path):
    source, src, num_official, converted = official_classifier
    x = torch.randn(1, 3, 64, 64)
    # init_cfg Pretrained with prefix='backbone.' (the detection and segmentation configs)
    backbone = UnifiedSwin(arch='micro', init_cfg=dict(type='Pretrained', checkpoint=src,
                                                      prefix='backbone.'))
    _, log = logged(backbone.init_weights)
    assert f"Converted checkpoint '{src}' on load into UnifiedSwin: {num_official} tensors of " \
           "the 'model' entry of an official unified token-mixer (STM-Evaluation) checkpoint" in log
    assert "UnifiedSwin (arch='micro')" in log and 'stm2mmpretrain.py' in log
    assert_same_state(backbone, {key: value for key, value in converted.items()
                                 if key.startswith('backbone.')}, prefix='backbone.')
    # mmengine's load_checkpoint, strict (mmpretrain's init_model and get_model use it)
    classifier = build_classifier('swin', 'micro', num_classes=10).eval()
    load_checkpoint(classifier, src, strict=True)
    assert_same_state(classifier, converted)
    with torch.no_grad():
        torch.testing.assert_close(classifier(x, mode='tensor'), source(x, mode='tensor'))
    api = init_classifier(Config(dict(model=classifier_cfg('swin', 'micro', num_classes=10))),
                          src, device='cpu')
    assert_same_state(api, converted)
    # a Runner's load_from (tools/train.py, tools/test.py)
    runner = Runner(model=classifier_cfg('swin', 'micro', num_classes=10), work_dir=str(tmp_path),
                    load_from=src, default_scope='mmpretrain')
    runner.load_or_resume()
    assert_same_state(runner.model, converted)


def test_ema_weights_are_taken_only_without_the_main_ones(official_classifier, tmp_path):
    _, src, _, converted = official_classifier
    official = torch.load(src, weights_only=True)['model']
    zeros = {key: torch.zeros_like(value) for key, value in official.items()}
    both, ema_only = str(tmp_path / 'both.pth'), str(tmp_path / 'ema.pth')
    torch.save({'model': official, 'model_ema': zeros}, both)
    torch.save({'state_dict_ema': official}, ema_only)
    classifier = build_classifier('swin', 'micro', num_classes=10)
    _, log = logged(lambda: load_checkpoint(classifier, both, strict=True))
    assert "of the 'model' entry" in log and '(not used: model_ema)' in log
    assert_same_state(classifier, converted)
    _, log = logged(lambda: load_checkpoint(classifier, ema_only, strict=True))
    assert "of the 'state_dict_ema' entry" in log
    assert_same_state(classifier, converted)


def build_detector():
    cfg = Config.fromfile(DET_CONFIG)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DET_MODELS.build(cfg.model)


def to_official_detector(state, mixer='swin'):
    """Our detector's keys and layouts -> the official mmdet 2.x ones (backbone as the official
    classifier's, ``out_norm_<i>`` for our output norms; neck and heads as they are)."""
    backbone = {key: value for key, value in state.items()
                if key.startswith('backbone.') and '.output_norms.' not in key}
    official = {f'backbone.{key}': value for key, value in to_official(mixer, backbone).items()}
    official.pop('backbone.stages.0.1.attn_mask', None)  # the detection blocks have none
    for key, value in state.items():
        if '.output_norms.' in key:
            index, rest = key[len('backbone.output_norms.'):].split('.')
            official[f'backbone.out_norm_{index}.{rest}'] = value.clone()
        elif not key.startswith('backbone.'):
            official[key] = value.clone()
    return official


@pytest.fixture(scope='module')
def official_detector(tmp_path_factory):
    """(source detector, official mmdet 2.x checkpoint path, offline conversion, marker)."""
    root = tmp_path_factory.mktemp('detector')
    source = perturbed(build_detector())
    official = to_official_detector(source.state_dict())
    marker = root / 'config_ran'
    src, dst = str(root / 'mask_rcnn_unified_swin_micro_1x.pth'), str(root / 'converted.pth')
    torch.save({'meta': dict(mmdet_version='2.25.0', CLASSES=COCO_CLASSES, epoch=12,
                             config=f'open({str(marker)!r}, "w").close()'),
                'state_dict': official, 'optimizer': {'state': {}, 'param_groups': []}}, src)
    STM_DETECTION.main([src, dst])
    return source, src, torch.load(dst, weights_only=True)['state_dict'], marker


def test_detector_loads_strictly_into_our_1x_config(official_detector):
    source, _, converted, _ = official_detector
    assert all(key in converted for key in ('backbone.output_norms.3.weight',
                                            'roi_head.mask_head.conv_logits.weight'))
    target = build_detector().eval()
    target.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for ours, theirs in zip(target.extract_feat(x), source.extract_feat(x)):
            torch.testing.assert_close(ours, theirs)


def test_detector_into_a_backbone_with_stage_norms_says_which_options_differ(official_detector):
    _, src, _, _ = official_detector
    detector = build_detector()
    chained = UnifiedSwin(arch='micro')  # stage norms, no output norms: the 3x configs' backbone
    detector.backbone = chained
    with pytest.raises(CheckpointMismatchError, match=r"It holds UnifiedSwin\(arch='micro'\) too, "
                                                      'with other modules: build the backbone'):
        load_checkpoint(detector, src)


def test_detector_loads_through_the_mmdet_apis_as_offline_conversion(official_detector):
    _, src, converted, marker = official_detector
    detector, log = logged(lambda: init_detector(DET_CONFIG, src, device='cpu'))
    assert "Converted checkpoint" in log and 'Mask R-CNN 1x' in log and 'stm_det2mmdet.py' in log
    assert_same_state(detector, converted)
    assert detector.dataset_meta['classes'] == COCO_CLASSES
    inferencer = DetInferencer(model=DET_CONFIG, weights=src, device='cpu', show_progress=False)
    assert_same_state(inferencer.model, converted)
    assert not marker.exists()  # the mmdet 2.x config text is dropped, never run


@pytest.mark.parametrize('mixer', MIXERS)
def test_every_mixer_of_a_detector_converts(mixer):
    """The backbone of each mixer's official detector (through the classifier's tables, with its
    layouts) loads strictly into the official detection backbone of ours and computes the same."""
    cls = getattr(groupmix_backbones, MIXERS[mixer])
    source = perturbed(cls(arch='micro', stage_norms=False, norm_outputs=True))
    state = {f'backbone.{key}': value for key, value in source.state_dict().items()}
    state['rpn_head.rpn_conv.weight'] = torch.zeros(256, 256, 3, 3)
    converted, summary = STM_DETECTION.convert_checkpoint(
        {'state_dict': to_official_detector(state, mixer)}, source='official.pth')
    assert f"{MIXERS[mixer]} (arch='micro')" in summary
    target = cls(arch='micro', stage_norms=False, norm_outputs=True).eval()
    target.load_state_dict({key[len('backbone.'):]: value for key, value in
                            converted['state_dict'].items() if key.startswith('backbone.')},
                           strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(target(x), source(x)):
            torch.testing.assert_close(ours, theirs)


def test_test_tool_evaluates_the_official_detector_as_its_conversion(demo_root, tmp_path):
    """tools/test.py loads strictly: an official-layout detector of the demo's shape (U-InternImage-
    Micro, the official detection backbone) gives the metrics of its offline conversion."""
    options = dict(short_run_options('det', demo_root), **{'model.backbone.stage_norms': False,
                                                           'model.backbone.norm_outputs': True})
    cfg = Config.fromfile(os.path.join(REPO, DEMOS['unified', 'det']))
    cfg.merge_from_dict(options)
    with DefaultScope.overwrite_default_scope('mmdet'):
        source = perturbed(DET_MODELS.build(cfg.model))
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': to_official_detector(source.state_dict(), 'dcnv3')}, src)
    STM_DETECTION.main([str(src), str(dst)])
    test, metrics = load_tool('tools/test.py'), tmp_path / 'metrics.json'

    def evaluate(weights):
        test.main([DEMOS['unified', 'det'], str(weights), '--work-dir', str(tmp_path / 'work'),
                   '--metrics-out', str(metrics), '--cfg-options',
                   *[f'{key}={value}' for key, value in options.items()]])
        return json.load(open(metrics))

    assert evaluate(src) == evaluate(dst)


@pytest.fixture
def crafted(tmp_path):
    """An official-looking checkpoint whose pickle runs ``touch marker``."""
    marker, path = tmp_path / 'pwned', str(tmp_path / 'official.pth')
    torch.save({'model': {'downsample_layers.0.stem.0.weight': Call(os.system,
                                                                    f'touch {tmp_path}/pwned')}},
               path)
    yield path
    assert not marker.exists()


@pytest.mark.parametrize('path_name', ['init_cfg', 'load_checkpoint', 'runner', 'init_model',
                                       'init_detector', 'det_inferencer', 'converter'])
def test_crafted_pickle_is_refused_on_every_path(crafted, path_name, tmp_path):
    loads = {
        'init_cfg': lambda: UnifiedSwin(arch='micro', init_cfg=dict(
            type='Pretrained', checkpoint=crafted, prefix='backbone.')).init_weights(),
        'load_checkpoint': lambda: load_checkpoint(UnifiedSwin(arch='micro'), crafted),
        'runner': lambda: Runner(model=classifier_cfg('swin', 'micro', num_classes=10),
                                 work_dir=str(tmp_path), load_from=crafted,
                                 default_scope='mmpretrain').load_or_resume(),
        'init_model': lambda: init_classifier(Config(dict(model=classifier_cfg(
            'swin', 'micro', num_classes=10))), crafted, device='cpu'),
        'init_detector': lambda: init_detector(DET_CONFIG, crafted, device='cpu'),
        'det_inferencer': lambda: DetInferencer(model=DET_CONFIG, weights=crafted, device='cpu'),
        'converter': lambda: STM_DETECTION.main([crafted, str(tmp_path / 'out.pth')]),
    }
    with pytest.raises(UnsafeCheckpointError, match='system'):
        loads[path_name]()


def test_official_checkpoint_of_another_arch_names_it(official_classifier):
    _, src, _, _ = official_classifier
    model = UnifiedSwin(arch=dict(embed_dims=[32, 64, 128, 256], depths=[2, 2, 2, 2],
                                  num_heads=[1, 2, 4, 8]),
                        init_cfg=dict(type='Pretrained', checkpoint=src, prefix='backbone.'))
    with pytest.raises(CheckpointMismatchError, match=r"It holds UnifiedSwin\(arch='micro'\); "
                                                      'valid archs: micro, tiny, small, base'):
        model.init_weights()


def test_other_models_get_official_looking_checkpoints_as_they_are(tmp_path):
    """Official PVT checkpoints share keys with FLatten-PVT's; a model without our backbones (as
    mmdet's PVT, which converts them itself) loads them unconverted."""
    model = torch.nn.Module()
    model.pos_embed1 = torch.nn.Parameter(torch.randn(1, 16, 8))
    model.patch_embed1 = torch.nn.Module()
    model.patch_embed1.proj = torch.nn.Conv2d(3, 8, 4, 4)
    path = str(tmp_path / 'pvt.pth')
    torch.save({'state_dict': {key: torch.randn_like(value)
                          for key, value in model.state_dict().items()}}, path)
    _, log = logged(lambda: load_checkpoint(model, path, strict=True))
    assert 'Converted' not in log
    assert_same_state(model, torch.load(path, weights_only=True)['state_dict'])


def test_official_checkpoint_of_no_official_size_is_refused(tmp_path):
    official = to_official('swin', build_classifier('swin', 'micro').state_dict())
    shallower = str(tmp_path / 'shallower.pth')
    torch.save({'model': {k: v for k, v in official.items() if not k.startswith('stages.2.8.')}},
               shallower)
    with pytest.raises(ConversionError, match=r'depths \[2, 2, 8, 2\].*matches none of our sizes '
                                              r'\(micro: depths \[2, 2, 9, 2\]'):
        load_checkpoint(UnifiedSwin(arch='micro'), shallower)


def test_published_detectors_have_their_configs():
    configs = {MIXERS[name.split('-')[1]]: name for name in ('unified-halo', 'unified-pvt',
                                                             'unified-swin', 'unified-convnext',
                                                             'unified-dcnv3')}
    assert len(DETECTION_RESULTS) == 20
    for (backbone, arch), (box_ap, mask_ap, url) in DETECTION_RESULTS.items():
        cfg = Config.fromfile(os.path.join(
            REPO, f'mmdet_cfgs/unified/mask-rcnn_{configs[backbone]}-{arch}_fpn_1x_coco.py'))
        assert (cfg.model.backbone.type, cfg.model.backbone.arch) == (backbone, arch)
        assert not cfg.model.backbone.stage_norms and cfg.model.backbone.norm_outputs
        assert 30 < mask_ap < box_ap < 50 and url.endswith(f'_{arch}_1x.pth')
