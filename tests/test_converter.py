
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import groupmix_backbones  # noqa: F401
from groupmix_backbones.converters import GROUPMIXFORMER

# our key fragment -> official one (the official model's names, written out independently)
TO_OFFICIAL = [
    ('backbone.stem.0.conv.', 'conv_stem.proj1.'), ('backbone.stem.0.bn.', 'conv_stem.norm1.'),
    ('backbone.stem.1.conv.', 'conv_stem.proj2.'), ('backbone.stem.1.bn.', 'conv_stem.norm2.'),
    ('backbone.out_norm.', 'norm4.'),
    ('head.fc.', 'head.'), ('.attn.', '.att.'), ('.group_aggs.0.norm.', '.aggregator.norm0.'),
    ('.local_agg.conv.', '.aggregator.agg0.conv.'), ('.local_agg.norm.', '.aggregator.agg0.norm.'),
    ('.crpe.convs.', '.crpe.conv_list.'), ('.depthwise.', '.conv1.'),
    ('.pointwise.', '.pointwise_conv.'),
]


def to_official(key):
    if key.startswith('backbone.stages.') and '.downsample.' in key:
        _, _, stage, _, rest = key.split('.', 4)
        key = f'patch_embed_layers.{stage}.{rest}'
    elif key.startswith('backbone.stages.'):
        _, _, stage, _, block, rest = key.split('.', 5)
        key = f'groupmixformer_backbone.{stage}.gma_stage.{block}.{rest}'
        key = key.replace('.cpe.', '.cpe.proj.')
        for i in (1, 2, 3):
            key = key.replace(f'.group_aggs.{i}.conv.', f'.aggregator.agg{i}.')
            key = key.replace(f'.group_aggs.{i}.norm.', f'.aggregator.norm{i}.')
    for ours, official in TO_OFFICIAL:
        key = key.replace(ours, official)
    return key


def test_official_checkpoint_converts_and_loads_strictly(tmp_path):
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='GroupMixFormer', arch='mini', out_indices=(3, ), final_norm=True),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=10, in_channels=160))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        source, target = MODELS.build(cfg).eval(), MODELS.build(cfg).eval()
    official = {to_official(k): v.clone() for k, v in source.state_dict().items()}
    assert 'groupmixformer_backbone.2.gma_stage.11.att.aggregator.agg3.pointwise_conv.weight' \
        in official
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save({'model': official}, src)
    GROUPMIXFORMER.main([str(src), str(dst)])
    state = torch.load(dst, weights_only=True)['state_dict']
    target.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))


def test_unknown_keys_are_refused():
    with pytest.raises(KeyError, match='Not an official GroupMixFormer checkpoint'):
        GROUPMIXFORMER.convert({'model': {'pos_embed': torch.zeros(1)}})
