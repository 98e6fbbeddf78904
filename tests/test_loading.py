"""Loading checkpoints into backbones: grids of other sizes resize (logged), init_cfg lists and
custom inits are honoured, and checkpoints that do not fit say what matched and what to do."""
import logging
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import load_checkpoint

from conftest import REPO
from groupmix_backbones import FLattenPVT, FLattenPVTv2, FLattenSwin, GroupMixFormer, UnifiedSwin
from groupmix_backbones.converters import ConversionError, FLATTEN, GROUPMIXFORMER
from groupmix_backbones.models import CheckpointMismatchError

GMF = dict(embed_dims=[20, 20, 40, 40], depths=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2])
PVT = dict(embed_dims=[16, 32, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
           mlp_ratios=[2, 2, 2, 2])


def save(tmp_path, name, state):
    path = tmp_path / name
    torch.save(state, path)
    return str(path)


def classifier_checkpoint(tmp_path, backbone):
    """A checkpoint as an ImageClassifier saves it: backbone.* (with its final norm) and head."""
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, backbone.embed_dims[-1])
    return save(tmp_path, 'classifier.pth', {'state_dict': state, 'meta': {}})


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_every_saved_grid_resizes_on_load_and_says_so():
    """FLatten-PVT's absolute position embeddings and key position encodings of a 64 px model load
    into a 96 px one (as 224 checkpoints into 384 fine-tunes)."""
    src = FLattenPVT(arch=dict(PVT, pretrain_img_size=64))
    dst = FLattenPVT(arch=dict(PVT, pretrain_img_size=96))
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    logger, records = MMLogger.get_current_instance(), Records()
    logger.addHandler(records)
    try:
        dst.load_state_dict(state, strict=True)
    finally:
        logger.removeHandler(records)
    text = '\n'.join(records.messages)
    for key, src_side, dst_side in (('patch_embed.pos_embed', 16, 24),
                                    ('stages.3.downsample.pos_embed', 2, 3),
                                    ('stages.0.blocks.0.attn.key_pos_embed', 16, 24)):
        assert f'Resized {key} from a {src_side}x{src_side} grid to {dst_side}x{dst_side}' in text
        assert dst.state_dict()[key].shape[1] == dst_side ** 2
    assert '(bilinear)' in text and '(bicubic)' in text
    with torch.no_grad():
        assert all(o.isfinite().all() for o in dst.eval()(torch.randn(1, 3, 96, 96)))


def test_init_cfg_list_and_custom_init_are_honoured(tmp_path):
    source = GroupMixFormer(arch=GMF, final_norm=True)
    checkpoint = classifier_checkpoint(tmp_path, source)
    custom = dict(type='Constant', layer='Linear', val=0.25, bias=0.)
    model = GroupMixFormer(arch=GMF, init_cfg=custom)
    model.init_weights()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all((m.weight == 0.25).all() for m in linears)
    model = GroupMixFormer(arch=GMF, init_cfg=[
        custom, dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')])
    model.init_weights()  # Pretrained last: the checkpoint wins
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, source.state_dict()[key], msg=key)


def test_checkpoint_of_another_arch_says_what_matched(tmp_path):
    checkpoint = classifier_checkpoint(
        tmp_path, GroupMixFormer(arch=dict(GMF, embed_dims=[20, 40, 40, 80]), final_norm=True))
    model = GroupMixFormer(arch=GMF, init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                                                   prefix='backbone.'))
    with pytest.raises(CheckpointMismatchError) as error:
        model.init_weights()
    text = str(error.value)
    assert 'does not fit GroupMixFormer(arch=' in text and 'tensors match' in text
    assert 'shape mismatch: stages.1.downsample.proj.pointwise.weight: checkpoint' in text
    assert len(text.splitlines()) < 10  # a summary, not hundreds of warning lines
    # deeper checkpoint, same widths: the extra blocks are not silently dropped
    deeper = classifier_checkpoint(tmp_path, GroupMixFormer(arch=dict(GMF, depths=[1, 1, 2, 1])))
    with pytest.raises(CheckpointMismatchError,
                       match=r'unexpected: backbone\.stages\.2\.blocks\.1\.'):
        load_checkpoint(torch.nn.ModuleDict(dict(backbone=GroupMixFormer(arch=GMF))), deeper)


def test_checkpoint_of_another_family_fails_even_when_not_strict(tmp_path):
    checkpoint = classifier_checkpoint(tmp_path, FLattenSwin(arch=dict(
        embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=3,
        pretrain_img_size=64)))
    wrapper = torch.nn.ModuleDict(dict(backbone=GroupMixFormer(arch=GMF)))
    with pytest.raises(CheckpointMismatchError, match=r'0 of \d+ tensors match'):
        load_checkpoint(wrapper, checkpoint, strict=False)


def test_classifier_checkpoint_initialises_a_dense_backbone(tmp_path):
    """The classifier's final norm is an option's module: left over, not an error."""
    source = GroupMixFormer(arch=GMF, final_norm=True)
    model = GroupMixFormer(arch=GMF, init_cfg=dict(type='Pretrained', prefix='backbone.',
                                                   checkpoint=classifier_checkpoint(tmp_path,
                                                                                    source)))
    model.init_weights()
    assert torch.equal(model.stages[0].blocks[0].cpe.weight,
                       source.stages[0].blocks[0].cpe.weight)


def test_new_output_norms_start_fresh_but_other_missing_keys_fail(tmp_path):
    """A classifier has no ``output_norms`` (``norm_outputs``); nothing else may be missing."""
    source = GroupMixFormer(arch=GMF, final_norm=True)
    checkpoint = classifier_checkpoint(tmp_path, source)
    model = GroupMixFormer(arch=GMF, norm_outputs=True, init_cfg=dict(
        type='Pretrained', prefix='backbone.', checkpoint=checkpoint))
    model.init_weights()
    assert torch.equal(model.stages[3].blocks[0].cpe.weight,
                       source.stages[3].blocks[0].cpe.weight)
    assert (model.output_norms['3'].weight == 1).all()
    state = torch.load(checkpoint, weights_only=True)
    del state['state_dict']['backbone.stages.3.blocks.0.cpe.weight']
    broken = save(tmp_path, 'broken.pth', state)
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing: backbone\.stages\.3\.blocks\.0\.cpe\.weight'):
        load_checkpoint(torch.nn.ModuleDict(dict(backbone=GroupMixFormer(
            arch=GMF, norm_outputs=True))), broken, strict=False)


@pytest.mark.parametrize('fmt,official,script', [
    (GROUPMIXFORMER, {'conv_stem.proj1.weight': torch.zeros(1), 'head.weight': torch.zeros(1)},
     'groupmixformer2mmpretrain.py'),
    (FLATTEN, {'patch_embed1.proj.weight': torch.zeros(1), 'pos_embed1': torch.zeros(1)},
     'flatten2mmpretrain.py')])
def test_official_checkpoint_of_another_family_converts_then_does_not_fit(tmp_path, fmt, official,
                                                                         script):
    """Official checkpoints are converted on load (logged, naming the converter that does the
    same offline); one of another family then fails the backbone's check."""
    checkpoint = save(tmp_path, 'official.pth', {'model': official})
    model = GroupMixFormer(arch=GMF, init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                                                   prefix='backbone.'))
    logger, records = MMLogger.get_current_instance(), Records()
    logger.addHandler(records)
    try:
        with pytest.raises(CheckpointMismatchError, match=r'0 of \d+ tensors match'):
            model.init_weights()
        with pytest.raises(CheckpointMismatchError, match=r'0 of \d+ tensors match'):
            load_checkpoint(GroupMixFormer(arch=GMF), checkpoint)  # also without a prefix
    finally:
        logger.removeHandler(records)
    conversions = [m for m in records.messages if f'official {fmt.family} checkpoint' in m]
    assert len(conversions) == 2 and all(script in m for m in conversions)


def test_converter_that_converts_nothing_fails(tmp_path):
    ours = {'state_dict': {'backbone.stem.0.conv.weight': torch.zeros(1)}}
    with pytest.raises(ConversionError, match=r'Not an official GroupMixFormer checkpoint: '
                                              r'expected conv_stem.*found 1 keys \(backbone\.stem'):
        GROUPMIXFORMER.main([save(tmp_path, 'ours.pth', ours), str(tmp_path / 'out.pth')])
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(ConversionError, match='Not an official FLatten Transformer checkpoint: '
                                              'expected .*; found no keys'):
        FLATTEN.convert({'model': {}})


@pytest.mark.parametrize('num_heads', [1, 2, 4, 8])
def test_groupmixformer_num_heads_option(num_heads):
    model = GroupMixFormer(arch=dict(GMF, embed_dims=[40, 40, 80, 80]), num_heads=num_heads).eval()
    splits = model.stages[0].blocks[0].attn.crpe.splits
    assert sum(splits) == 32  # 4/5 of 40 channels, all heads covered
    with torch.no_grad():
        assert all(o.isfinite().all() for o in model(torch.randn(1, 3, 33, 47)))
    with pytest.raises(ValueError, match='divisible by num_heads'):
        GroupMixFormer(arch=GMF, num_heads=3)


def test_flatten_norm_cfg_reaches_every_token_norm():
    model = FLattenSwin(arch=dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                  num_heads=[1, 2, 2, 4], window_size=3, pretrain_img_size=64),
                        final_norm=True, norm_cfg=dict(type='LN', eps=1e-3))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 1 + 4 * 2 + 3 + 1 and all(m.eps == 1e-3 for m in norms)
    pvt = FLattenPVT(arch=PVT)  # official eps per place without an eps in norm_cfg
    assert pvt.stages[0].blocks[0].norm1.eps == 1e-6 and pvt.patch_embed.norm.eps == 1e-5
    with pytest.raises(ValueError, match="norm_cfg must be of type 'LN'"):
        FLattenPVT(arch=PVT, norm_cfg=dict(type='BN'))


def test_too_small_pretrain_img_size_is_refused():
    with pytest.raises(ValueError, match='pretrain_img_size must be an int of at least 32'):
        FLattenPVT(arch=PVT, pretrain_img_size=16)


def old_classifier_checkpoint(tmp_path, metadata=True):
    """The pinned first-version GroupMixFormer (tests/data) as a classifier saved it: its keys and
    metadata under ``backbone.``."""
    saved = torch.load(osp.join(REPO, 'tests', 'data', 'main-5d88427_backbones.pt'),
                       weights_only=True)['GroupMixFormer']
    state = OrderedDict((f'backbone.{k}', v) for k, v in saved['state_dict'].items())
    if metadata:
        state._metadata = OrderedDict((f'backbone.{k}' if k else 'backbone', v)
                                      for k, v in saved['state_dict']._metadata.items())
    return saved, save(tmp_path, 'old.pth', {'state_dict': state, 'meta': {}})


@pytest.mark.parametrize('metadata', [True, False], ids=['metadata', 'no-metadata'])
@pytest.mark.parametrize('prefix', ['backbone.', None], ids=['prefix', 'recognised'])
def test_init_cfg_loads_first_version_keys_strictly_with_their_outputs(tmp_path, metadata, prefix):
    """init_cfg reads the checkpoint, keeps its metadata (key versions) under the prefix, takes a
    whole model's backbone without one, renames older keys and loads strictly."""
    saved, checkpoint = old_classifier_checkpoint(tmp_path, metadata)
    model = GroupMixFormer(arch=saved['arch'], final_norm=True, init_cfg=dict(
        type='Pretrained', checkpoint=checkpoint, prefix=prefix))
    model.init_weights()
    with torch.no_grad():
        for new, old in zip(model.eval()(saved['input']), saved['outputs'], strict=True):
            torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)


def test_key_version_is_honoured(tmp_path):
    """Keys that claim the current version are not renamed: first-version keys marked version 2
    do not fit, and the message says which."""
    saved = torch.load(osp.join(REPO, 'tests', 'data', 'main-5d88427_backbones.pt'),
                       weights_only=True)['GroupMixFormer']
    state = saved['state_dict']
    state._metadata[''] = dict(version=2)
    with pytest.raises(CheckpointMismatchError, match=r'unexpected: patch_embeds\.0\.'):
        GroupMixFormer(arch=saved['arch'], final_norm=True).load_state_dict(state)


def test_prefix_not_in_checkpoint_says_what_it_has(tmp_path):
    checkpoint = classifier_checkpoint(tmp_path, GroupMixFormer(arch=GMF))
    model = GroupMixFormer(arch=GMF, init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                                                   prefix='model.backbone'))
    with pytest.raises(CheckpointMismatchError, match=r"no key under prefix 'model\.backbone\.'"
                                                      r'.*; it has \d+ keys \(backbone\.stem'):
        model.init_weights()


def test_norm_places_give_the_norms_and_the_keys_a_checkpoint_may_lack_or_leave():
    """Each family declares where its output norms may sit; what it builds there decides which
    checkpoint keys are left over (places built without) and which start fresh (output norms)."""
    last = GroupMixFormer(arch=GMF, final_norm=True)
    assert last.norms_at == ('last', ) and last.out_norm is not None
    assert last.optional_state_prefixes == ('output_norms.', ) and not last.new_state_prefixes
    outputs = GroupMixFormer(arch=GMF, norm_outputs=True)
    assert outputs.optional_state_prefixes == ('out_norm.', )
    assert outputs.new_state_prefixes == ('output_norms.', )
    detection = UnifiedSwin(arch=dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                      num_heads=[1, 2, 4, 8]), stage_norms=False,
                            norm_outputs=True)
    assert detection.optional_state_prefixes == tuple(f'stages.{i}.norm.' for i in range(4))
    assert all(stage.norm is None for stage in detection.stages)
    pvt_v2 = FLattenPVTv2(arch=PVT)
    assert pvt_v2.norms_at == ('stages', ) and all(stage.norm.eps == 1e-6
                                                   for stage in pvt_v2.stages)
    with pytest.raises(ValueError, match='FLattenPVTv2 has no final_norm: every stage ends in'):
        FLattenPVTv2(arch=PVT, final_norm=True)


def test_load_checkpoint_migrates_first_version_keys_of_a_whole_model(tmp_path):
    """mmengine's load_checkpoint (load_from, resume, the inferencers) keeps the metadata: a
    classifier saved with first-version keys loads strictly into the current backbone."""
    saved, checkpoint = old_classifier_checkpoint(tmp_path)
    model = torch.nn.ModuleDict(dict(backbone=GroupMixFormer(arch=saved['arch'], final_norm=True)))
    load_checkpoint(model, checkpoint, strict=True)
    with torch.no_grad():
        for new, old in zip(model.backbone.eval()(saved['input']), saved['outputs'], strict=True):
            torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
