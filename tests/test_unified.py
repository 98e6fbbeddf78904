"""The unified token-mixer family: official sizes, official checkpoints through our converter, and
what the shared contract test does not see (U-PVT's position embeddings at other sizes)."""
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import groupmix_backbones  # noqa: F401
from groupmix_backbones.converters import STM, ConversionError
from groupmix_backbones.registry import BACKBONES

MIXERS = {'halo': 'UnifiedHaloNet', 'pvt': 'UnifiedPVT', 'swin': 'UnifiedSwin',
          'convnext': 'UnifiedConvNeXt', 'dcnv3': 'UnifiedInternImage'}
CLASSES = {cls.__name__: cls for cls in BACKBONES}

# parameters of the official classifiers (timm.create_model('unified_<mixer>_<size>') of
# OpenGVLab/STM-Evaluation with timm 0.6.7, counted outside this repository)
OFFICIAL_PARAMS = {
    'halo': dict(micro=4389672, tiny=31523176, small=52831336, base=93327336),
    'pvt': dict(micro=4454056, tiny=31157736, small=50887656, base=91566312),
    'swin': dict(micro=4381042, tiny=31540546, small=52867666, base=93388576),
    'convnext': dict(micro=4439624, tiny=31912360, small=54393640, base=95865576),
    'dcnv3': dict(micro=4302692, tiny=29933272, small=50082280, base=97465192),
}


def classifier_cfg(mixer, arch, num_classes=1000):
    cls = CLASSES[MIXERS[mixer]]
    width = (cls.resolve_arch(arch)['embed_dims'])[-1]
    return dict(type='ImageClassifier',
                backbone=dict(type=cls.__name__, arch=arch, out_indices=(3, )),
                neck=dict(type='PointwiseConvPoolNeck', in_channels=width),
                head=dict(type='LinearClsHead', num_classes=num_classes,
                          in_channels=width * 3 // 2))


def build_classifier(mixer, arch, **kwargs):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(classifier_cfg(mixer, arch, **kwargs))


@pytest.mark.parametrize('mixer,arch', [(m, a) for m in MIXERS for a in OFFICIAL_PARAMS[m]])
def test_classifiers_have_the_official_parameter_counts(mixer, arch):
    with torch.device('meta'):
        model = build_classifier(mixer, arch)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[mixer][arch]


# ---------------------------------------------------------------- official checkpoints
# our key -> the official one, written out independently of the converter's rules
STEM = [('backbone.patch_embed.conv1.proj.', 'downsample_layers.0.stem.0.'),
        ('backbone.patch_embed.conv1.norm.', 'downsample_layers.0.stem.1.'),
        ('backbone.patch_embed.conv2.proj.', 'downsample_layers.0.stem.3.'),
        ('backbone.patch_embed.conv2.norm.', 'downsample_layers.0.stem.4.'),
        ('neck.conv.', 'conv_head.0.'), ('neck.bn.', 'conv_head.1.'), ('head.fc.', 'head.')]
BLOCK_NAMES = {
    'halo': [('attn.height_rel', 'attn.pos_embed.height_rel'),
             ('attn.width_rel', 'attn.pos_embed.width_rel'), ('gamma1', 'gamma_1'),
             ('gamma2', 'gamma_2')],
    'pvt': [('gamma1', 'gamma_1'), ('gamma2', 'gamma_2')],
    'swin': [('attn.rel_pos_table', 'attn.relative_position_bias_table'), ('gamma1', 'gamma_1'),
             ('gamma2', 'gamma_2')],
    'convnext': [('norm1.', 'dw_norm.'), ('attn.in_proj.', 'dw_input_proj.'),
                 ('attn.dwconv.', 'dwconv.'), ('attn.out_proj.', 'dw_out_proj.'),
                 ('norm2.', 'pw_norm.'), ('mlp.fc1.', 'pwconv1.'), ('mlp.fc2.', 'pwconv2.'),
                 ('gamma1', 'gamma_1'), ('gamma2', 'gamma_2')],
    'dcnv3': [('attn.dw_conv.', 'attn.dw_conv.0.'), ('attn.dw_norm.', 'attn.dw_conv.1.norm.')],
}
# official layouts of tensors ours keeps otherwise: (official key pattern, ours -> official)
LAYOUTS = {
    'halo': [(r'.*\.gamma_[12]', lambda t: t.reshape(1, 1, 1, -1)),
             (r'.*\.attn\.kv\.weight', lambda t: t[:, :, None, None])],
    'convnext': [(r'.*\.gamma_1', lambda t: t.reshape(1, -1, 1, 1)),
                 (r'.*\.gamma_2', lambda t: t.reshape(1, 1, 1, -1)),
                 (r'.*\.dw_(input|out)_proj\.weight', lambda t: t[:, :, None, None])],
}


def to_official(mixer, state):
    official = {}
    for key, value in state.items():
        match = re.fullmatch(r'backbone\.stages\.(\d)\.(downsample|norm|pos_embed|blocks)\.(.+)', key)
        if match:
            stage, part, rest = match.groups()
            if part == 'downsample':
                key = f'downsample_layers.{stage}.reduction.' + {'proj.weight': '0.weight'}.get(
                    rest, rest.replace('norm.', '1.'))
            elif part == 'norm':
                key = f'stage_norms.{stage}.{rest}'
            elif part == 'pos_embed':
                side = int(value.shape[1] ** 0.5)
                key, value = f'stages.{stage}.0.pos_embed', value.transpose(1, 2).reshape(
                    1, -1, side, side)
            else:
                index, rest = rest.split('.', 1)
                for ours, theirs in BLOCK_NAMES.get(mixer, []):
                    if rest.startswith(ours):
                        rest = theirs + rest[len(ours):]
                        break
                key = f'stages.{stage}.{index}.{rest}'
        for ours, theirs in STEM:
            key = key.replace(ours, theirs)
        for pattern, layout in LAYOUTS.get(mixer, []):
            if re.fullmatch(pattern, key):
                value = layout(value)
        official[key] = value.clone()
    if mixer == 'swin':  # buffers the official checkpoints carry
        official['stages.0.0.attn.relative_position_index'] = torch.zeros(49, 49, dtype=torch.long)
        official['stages.0.1.attn_mask'] = torch.zeros(64, 49, 49)
    return official


@pytest.mark.parametrize('mixer', MIXERS)
def test_official_checkpoint_converts_recognised_and_loads_strictly(mixer, tmp_path):
    torch.manual_seed(0)
    source, target = build_classifier(mixer, 'micro', num_classes=10).eval(), \
        build_classifier(mixer, 'micro', num_classes=10).eval()
    with torch.no_grad():
        for param in source.parameters():  # layer scales, offsets, tables: away from their init
            param.add_(0.05 * torch.randn_like(param))
    official = to_official(mixer, source.state_dict())
    assert STM.identify(official) == (MIXERS[mixer], 'micro')
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save({'model': official}, src)
    STM.main([str(src), str(dst)])
    saved = torch.load(dst, weights_only=True)
    assert saved['meta']['backbone'] == MIXERS[mixer] and saved['meta']['arch'] == 'micro'
    target.load_state_dict(saved['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))


def test_unknown_sizes_keys_and_families_are_refused():
    official = to_official('convnext', build_classifier('convnext', 'micro').state_dict())
    shallower = {k: v for k, v in official.items() if not k.startswith('stages.3.2.')}
    with pytest.raises(ConversionError, match=r'depths \[3, 3, 8, 2\] and widths \[32, 64, 128, '
                       r'256\] matches none of our sizes \(micro: depths \[3, 3, 8, 3\]'):
        STM.convert(shallower)
    with pytest.raises(ConversionError, match="Unknown key 'stages.0.0.extra'"):
        STM.convert(dict(official, **{'stages.0.0.extra': torch.zeros(1)}))
    with pytest.raises(ConversionError, match='Not an official unified token-mixer'):
        STM.convert({'model': {'patch_embed.proj.weight': torch.zeros(1)}})


def test_pvt_position_embeddings_resize_with_corners_aligned():
    """At other sizes U-PVT resizes its position embeddings as the official detection code does
    (bilinear, align_corners=True on the (1, C, H, W) map)."""
    model = CLASSES['UnifiedPVT'](arch=dict(CLASSES['UnifiedPVT'].arch_zoo['micro'],
                                            depths=[1, 1, 1, 1]))
    embed = model.stages[0].pos_embed
    torch.nn.init.normal_(embed.weight)
    tokens = torch.zeros(1, 9 * 13, 32)
    grid = embed.weight.transpose(1, 2).reshape(1, 32, 56, 56)
    expected = F.interpolate(grid, size=(9, 13), mode='bilinear', align_corners=True)
    torch.testing.assert_close(embed(tokens, (9, 13)), expected.flatten(2).transpose(1, 2))
