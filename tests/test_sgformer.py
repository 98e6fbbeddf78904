"""SG-Former specifics; the options every backbone shares are in test_contract.py."""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch.overrides import TorchFunctionMode

import groupmix_backbones  # noqa: F401
from groupmix_backbones import SGFormer
from groupmix_backbones.models.sgformer import SignificanceGuidedAttention
from groupmix_backbones.converters import SGFORMER, recognise
from groupmix_backbones.models import sgformer
from groupmix_backbones.models.layers import AttentionWeights, window_cells
from groupmix_backbones.models.sgformer import (HybridScaleAttention, SignificanceGuidedAttention,
                                                sincos_pos_embed)
from groupmix_backbones.visualization.attention import attention_row, record_attention

# two blocks per stage in stages 1-3 (hybrid-scale, then significance-guided), pre-trained at 64
TINY = dict(embed_dims=[16, 32, 32, 64], depths=[2, 2, 2, 1], num_heads=[2, 2, 4, 4],
            mlp_ratios=[2, 2, 2, 2])
TINY_SR = [8, 4, 2, 1]  # the default shrink ratios

# official classifiers (OliverRensu/SG-Former, 1000 classes), counted on the official model
OFFICIAL_PARAMS = dict(s=22_545_981, m=38_689_316, b=77_950_293)


@pytest.mark.parametrize('arch', list(OFFICIAL_PARAMS))
def test_param_counts_of_released_classifiers(arch):
    with torch.device('meta'):
        model = SGFormer(arch=arch)
    dim = model.embed_dims[-1]
    assert sum(p.numel() for p in model.parameters()) + dim * 1000 + 1000 == OFFICIAL_PARAMS[arch]


def test_blocks_alternate_as_released():
    with torch.device('meta'):
        model = SGFormer(arch='s')
    kinds = [[type(block.attn).__name__[0] for block in stage.blocks] for stage in model.stages]
    assert kinds == [['H', 'S'], ['H', 'S'] * 2, ['H', 'S'] * 8, ['G']]


def test_sincos_pos_embed_is_maes():
    """Against MAE's numpy formula (the official pos_embed.py), written out here."""
    dim, size = 16, 5
    omega = 1. / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    axis = np.arange(size, dtype=np.float32)
    grid_w, grid_h = np.meshgrid(axis, axis)

    def one_d(pos):
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    expected = np.concatenate([one_d(grid_w), one_d(grid_h)], axis=1)
    torch.testing.assert_close(sincos_pos_embed(dim, (size, size))[0],
                               torch.from_numpy(expected).float())
    model = SGFormer(arch=dict(TINY), pretrain_img_size=64)
    model.init_weights()
    torch.testing.assert_close(model.patch_embed.pos_embed.weight, sincos_pos_embed(16, (16, 16)))


def reference_significance(attn, x, hw_shape):
    """The significance map written out per token pair on the real map: the global attention to
    the shrunk map (computed as PVT's, zero padding), spread over each reduced token's cells, plus
    the attention a key gets inside its 7x7 window from the window's real queries, divided by a
    whole window's 49."""
    (H, W), r, w, heads = hw_shape, attn.sr_ratio, 7, attn.num_heads // 2
    B, N, C = x.shape
    q = attn.global_q(x).reshape(B, N, heads, -1).transpose(1, 2)
    image = F.pad(x.transpose(1, 2).reshape(B, C, H, W), (0, -W % r, 0, -H % r))
    reduced = attn.reduce_act(attn.reduce_norm(attn.reduce(image).flatten(2).transpose(1, 2)))
    k = attn.global_kv(reduced).reshape(B, -1, 2, heads, C // 2 // heads)[:, :, 0].transpose(1, 2)
    received = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1).mean((1, 2))
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    reduced_w = math.ceil(W / r)
    global_part = received[:, (rows // r * reduced_w + cols // r).flatten()]
    q = attn.local_q(x).reshape(B, N, heads, -1).transpose(1, 2)
    k = attn.local_kv(x).reshape(B, N, 2, heads, -1)[:, :, 0].transpose(1, 2)
    window = (rows // w * 1000 + cols // w).flatten()
    same = window[:, None] == window[None]
    logits = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~same, float('-inf'))
    probs = logits.softmax(-1).mean(1)  # (B, queries, keys)
    local_part = (probs * same).sum(1) / w ** 2  # from its window's real queries, per whole window
    return (global_part + local_part).reshape(B, H, W)


@pytest.mark.parametrize('hw_shape', [(10, 13), (14, 14), (3, 5), (9, 17)])
@pytest.mark.parametrize('sr_ratio', [2, 4])
def test_significance_on_padded_maps_matches_reference(hw_shape, sr_ratio):
    torch.manual_seed(0)
    attn = HybridScaleAttention(16, num_heads=4, sr_ratio=sr_ratio).eval()
    for param in attn.parameters():
        torch.nn.init.normal_(param, std=0.3)  # far from uniform attention
    x = torch.randn(2, hw_shape[0] * hw_shape[1], 16)
    seen = []
    attn.significance.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        out, significance = attn(x, hw_shape)
        expected = reference_significance(attn, x, hw_shape)
    assert seen[0] is significance and significance.shape == (2, *hw_shape)
    torch.testing.assert_close(significance, expected, rtol=1e-4, atol=1e-6)
    assert out.shape == x.shape and not significance.requires_grad


@pytest.mark.parametrize('image_hw', [(333, 517), (97, 61), (224, 224)])
def test_uniform_attention_gives_a_uniform_significance_at_any_size(image_hw):
    """Padding changes nothing real: with zero query and key weights every token gets the same
    share, also in the windows and reduced cells that padding cuts short."""
    model = SGFormer(arch=dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                               num_heads=[2, 2, 4, 8], mlp_ratios=[2] * 4)).eval()
    seen = []
    for module in model.modules():
        if isinstance(module, HybridScaleAttention):
            for linear in (module.global_q, module.global_kv, module.local_q, module.local_kv):
                torch.nn.init.zeros_(linear.weight)
                torch.nn.init.zeros_(linear.bias)
            module.significance.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        model(torch.randn(1, 3, *image_hw))
    assert len(seen) == 3
    for significance in seen:
        torch.testing.assert_close(significance, significance.mean().expand_as(significance))


def official_merge(attn, tokens):
    """The official token groups (exact at 224): the sorted tokens' parts, channels first,
    reshaped into ``N // group // parts``-many groups and weighted by the official f1, f2, f3."""
    B, N, C = tokens.shape
    if len(attn.group_sizes) == 3:
        parts = tokens[:, :N // 4], tokens[:, N // 4:N // 4 * 3], tokens[:, N // 4 * 3:]
        counts = [N // attn.group_sizes[0] // 4, N // attn.group_sizes[1] // 2,
                  N // attn.group_sizes[2] // 4]
    else:
        parts = tokens[:, :N // 2], tokens[:, N // 2:]
        counts = [N // attn.group_sizes[0] // 2, N // attn.group_sizes[1] // 2]
    return torch.cat([f(p.permute(0, 2, 1).reshape(B, C, n, -1)).squeeze(-1)
                      for p, n, f in zip(parts, counts, attn.aggregators)], dim=-1).permute(0, 2, 1)


@pytest.mark.parametrize('sr_ratio,side,num_merged', [(8, 56, 60), (4, 28, 60), (2, 14, 147)])
def test_token_groups_at_224_are_the_official_ones(sr_ratio, side, num_merged):
    """At 224 (stage maps 56, 28, 14) every part divides into whole groups: nothing is padded and
    the merged tokens are the official's."""
    torch.manual_seed(0)
    attn = SignificanceGuidedAttention(32, num_heads=2, sr_ratio=sr_ratio)
    tokens = torch.randn(2, side * side, 32)
    merged = attn.merge(tokens)
    assert merged.shape == (2, num_merged, 32)
    torch.testing.assert_close(merged, official_merge(attn, tokens))


@pytest.mark.parametrize('sr_ratio,num_tokens,num_merged', [
    (8, 153, 1 + 2 + 2), (8, 1, 1), (4, 15, 1 + 1 + 1), (2, 15, 4 + 8), (2, 1, 1)])
def test_token_groups_of_other_maps_keep_their_size(sr_ratio, num_tokens, num_merged):
    """ceil(part / group) groups per part, the last completed with zeros: a part of one group
    plus zeros gives the group's weighting of its real ranks."""
    torch.manual_seed(0)
    attn = SignificanceGuidedAttention(8, num_heads=2, sr_ratio=sr_ratio)
    tokens = torch.randn(1, num_tokens, 8)
    merged = attn.merge(tokens)
    assert merged.shape == (1, num_merged, 8)
    last = attn.aggregators[-1]
    n = num_tokens - (num_tokens // 4 * 3 if len(attn.group_sizes) == 3 else num_tokens // 2)
    start = (math.ceil(n / last.in_features) - 1) * last.in_features
    tail = tokens[0, num_tokens - n + start:]
    expected = tail.T @ last.weight[0, :len(tail)] + last.bias
    torch.testing.assert_close(merged[0, -1], expected)


def test_guided_blocks_read_the_previous_significance_with_checkpointing():
    """Significance passes between blocks at an odd size, also through activation checkpointing;
    a hook on each hybrid-scale block's ``attn.significance`` reads a map of the stage's size."""
    x = torch.randn(2, 3, 45, 61)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = SGFormer(arch=TINY, pretrain_img_size=64, with_cp=with_cp).train()
        maps = {}
        for i, stage in enumerate(model.stages[:3]):
            stage.blocks[0].attn.significance.register_forward_hook(
                lambda module, args, out, i=i: maps.setdefault(i, out))
        torch.manual_seed(1)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
        assert {i: tuple(m.shape) for i, m in maps.items()} == {
            i: (2, math.ceil(45 / 2 ** (i + 2)), math.ceil(61 / 2 ** (i + 2))) for i in range(3)}
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    for name, grad in grads_a.items():
        assert grad is not None, name  # every parameter is used, the aggregators included
        torch.testing.assert_close(grad, grads_b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_significance_steers_the_guided_block():
    model = SGFormer(arch=TINY, pretrain_img_size=64).eval()
    block = model.stages[0].blocks[1]
    x = torch.randn(1, 8 * 8, 16)
    significance = torch.randn(1, 8, 8)
    with torch.no_grad():
        a = block(x, (8, 8), significance)[0]
        b = block(x, (8, 8), -significance)[0]
    assert not torch.allclose(a, b)


def test_equal_significance_keeps_the_scan_order():
    rows, cols = SignificanceGuidedAttention.scan_orders(torch.zeros(2, 3, 5))
    assert torch.equal(rows, torch.arange(15).expand(2, -1))
    assert torch.equal(cols, torch.arange(15).expand(2, -1))  # (column-scan indices)


def test_group_of_rank_follows_the_merge():
    attn = SGFormer(arch=TINY, pretrain_img_size=64).stages[0].blocks[1].attn
    with torch.no_grad():  # each merged key: the sum of its group
        for aggregator in attn.aggregators:
            aggregator.weight.fill_(1)
            aggregator.bias.zero_()
    for n in (64, 77, 3136):
        groups = attn.group_of_rank(n)
        with torch.no_grad():
            merged = attn.merge(torch.eye(n)[None])  # token i alone in channel i
        assert groups.shape == (n, ) and int(groups.max()) + 1 == merged.shape[1]
        assert torch.equal((merged[0] != 0).float().argmax(0), groups)


def test_errors_say_what_is_valid():
    with pytest.raises(KeyError, match='Valid names: s, m, b'):
        SGFormer(arch='l')
    with pytest.raises(ValueError, match='sr_ratios must give one of 8, 4, 2, 1'):
        SGFormer(arch=dict(TINY, sr_ratios=[16, 4, 2, 1]))
    with pytest.raises(ValueError, match='num_heads must be even'):
        SGFormer(arch=dict(TINY, num_heads=[1, 2, 4, 4]))


class CountSoftmax(TorchFunctionMode):
    """Counts the softmax calls of the code run inside it (SDPA's fused kernels make none)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += func in (torch.Tensor.softmax, torch.softmax, F.softmax)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('hw_shape', [(10, 13), (14, 14)])
@pytest.mark.parametrize('sr_ratio', [2, 4])
def test_hybrid_scale_computes_its_probabilities_once(hw_shape, sr_ratio):
    """A hybrid-scale block computes one softmax per half, for its output (that of SDPA's fused
    path within rounding) and its map (the written-out reference)."""
    torch.manual_seed(0)
    attn = HybridScaleAttention(16, num_heads=4, sr_ratio=sr_ratio).eval()
    for param in attn.parameters():
        torch.nn.init.normal_(param, std=0.3)
    x = torch.randn(2, hw_shape[0] * hw_shape[1], 16)
    real, halves = sgformer.softmax_attention, []

    def against_fused(q, k, v, record=None, **kwargs):
        out = real(q, k, v, record=record, **kwargs)
        torch.testing.assert_close(out, real(q, k, v, **kwargs), rtol=1e-6, atol=1e-6)
        halves.append(record is not None)
        return out

    with torch.no_grad():
        with CountSoftmax() as explicit:
            out, significance = attn(x, hw_shape)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sgformer, 'softmax_attention', against_fused)
            assert torch.equal(attn(x, hw_shape)[0], out)
        expected = reference_significance(attn, x, hw_shape)
    assert explicit.calls == 2 and halves == [True, True]
    torch.testing.assert_close(significance, expected, rtol=0, atol=1e-6)


def test_probes_record_the_weights_each_attention_computes_with():
    """Recording every probe of a model: each probe's weights, applied to the values its call of
    softmax_attention was given, give that call's output; cells: the whole map (keys on the map
    shrunk sr times for the global half), the windows, and -1 for the merged keys."""
    model = SGFormer(arch=TINY, pretrain_img_size=64).eval()
    hw_shapes = [(12, 16), (6, 8), (3, 4), (2, 2)]
    events = []
    real = sgformer.softmax_attention

    def attention(q, k, v, **kwargs):
        out = real(q, k, v, **kwargs)
        events.append((v, out))
        return out

    probes = {name: module for name, module in model.named_modules()
              if isinstance(module, AttentionWeights)}
    for name, probe in probes.items():
        probe.register_forward_hook(lambda module, args, out, name=name: events.append(name))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sgformer, 'softmax_attention', attention)
        records = record_attention(model, lambda: model(torch.randn(1, 3, 45, 61)), probes)
    assert len(records) == len(probes) == 10 and len(events) == 20
    for name, (v, out) in zip(events[::2], events[1::2]):
        torch.testing.assert_close(records[name]['weights'] @ v, out, rtol=0, atol=1e-6)
    for name, record in records.items():
        stage, block = int(name.split('.')[1]), int(name.split('.')[3])
        hw, kind = hw_shapes[stage], name.rsplit('.', 1)[1]
        N, keys = hw[0] * hw[1], record['keys']
        assert record['hw_shape'] == hw
        if kind == 'local_weights':
            assert torch.equal(record['queries'], window_cells(hw, 7)) and keys is record['queries']
            continue
        assert torch.equal(record['queries'], torch.arange(N))
        if kind == 'global_weights':
            r = TINY_SR[stage]
            assert record['key_stride'] == r
            assert torch.equal(keys, torch.arange(math.ceil(hw[0] / r) * math.ceil(hw[1] / r)))
        elif block % 2 and stage < 3:  # significance-guided: merged groups have no cell
            assert (keys == -1).all() and len(keys) == record['weights'].shape[-1]
        else:
            assert torch.equal(keys, torch.arange(N))


def test_hybrid_scale_rows_on_the_map_give_the_output():
    """Each half's recorded row of a query, laid on the map (a reduced key spread over its cells,
    a window's keys on theirs), applied to the values there gives the query's output."""
    torch.manual_seed(0)
    attn = HybridScaleAttention(16, num_heads=4, sr_ratio=4).eval()
    for param in attn.parameters():
        torch.nn.init.normal_(param, std=0.3)
    with torch.no_grad():  # output = attention (no LePE, identity projection)
        for param in (attn.lepe_linear.weight, attn.lepe_linear.bias, attn.lepe_conv.bias,
                      attn.proj.bias):
            param.zero_()
        attn.proj.weight.copy_(torch.eye(16))
    hw = (8, 12)  # windows padded to 14 x 14, the map reduced to 2 x 3
    x = torch.randn(1, 96, 16)
    records = record_attention(attn, lambda: attn(x, hw), {
        'global': attn.global_weights, 'local': attn.local_weights})
    with torch.no_grad():
        out = attn(x, hw)[0][0]
        reduced = attn.reduce_act(attn.reduce_norm(
            attn.reduce(x.transpose(1, 2).reshape(1, 16, *hw)).flatten(2).transpose(1, 2)))
        global_v = attn.global_kv(reduced)[..., 8:].reshape(1, 2, 3, 8)
        global_v = global_v.repeat_interleave(4, 1).repeat_interleave(4, 2).reshape(1, 96, 8)
        local_v = attn.local_kv(x)[..., 8:]
        for cell in [(0, 0), (5, 7), (7, 11)]:
            parts = [torch.einsum('hyx,yxhd->hd', attention_row(records[half], cell).weights,
                                  v[0].reshape(*hw, 2, 4)).reshape(-1)
                     for half, v in (('global', global_v), ('local', local_v))]
            torch.testing.assert_close(torch.cat(parts), out[cell[0] * 12 + cell[1]], rtol=0,
                                       atol=1e-5)


# ---------------------------------------------------------------- converter
def _official_block(index, rest):
    """Our key inside a block -> the official one (written out independently of the converter)."""
    hybrid = {'global_q': 'q1', 'global_kv': 'kv1', 'reduce': 'sr', 'reduce_norm': 'norm',
              'local_q': 'q2', 'local_kv': 'kv2'}
    m = re.match(r'attn\.(\w+)\.(weight|bias)$', rest)
    if m and m[1] in hybrid:
        assert index % 2 == 0, rest
        return f'attn.{hybrid[m[1]]}.{m[2]}'
    m = re.match(r'attn\.aggregators\.(\d)\.(weight|bias)$', rest)
    if m:
        assert index % 2 == 1, rest
        return f'attn.f{int(m[1]) + 1}.{m[2]}'
    return re.sub(r'^mlp\.dwconv\.', 'mlp.dwconv.dwconv.', rest)


def to_official(key):
    if key.startswith('head.fc.'):
        return 'head.' + key[len('head.fc.'):]
    key = key[len('backbone.'):]
    m = re.match(r'stages\.(\d)\.blocks\.(\d+)\.(.+)', key)
    if m:
        return f'block{int(m[1]) + 1}.{m[2]}.{_official_block(int(m[2]), m[3])}'
    m = re.match(r'stages\.(\d)\.downsample\.(conv\d)\.(conv|norm)\.(.+)', key)
    if m:
        return f'patch_embed{int(m[1]) + 1}.{m[2]}.{dict(conv="c", norm="bn")[m[3]]}.{m[4]}'
    m = re.match(r'stages\.(\d)\.norm\.(.+)', key)
    if m:
        return f'norm{int(m[1]) + 1}.{m[2]}'
    if key == 'patch_embed.pos_embed.weight':
        return 'pos_embed'
    m = re.match(r'patch_embed\.convs\.(\d)\.(conv|norm)\.(.+)', key)
    if m:
        return f'patch_embed1.conv.{m[1]}.{dict(conv="c", norm="bn")[m[2]]}.{m[3]}'
    assert key.startswith('patch_embed.norm.'), key
    return 'patch_embed1.' + key[len('patch_embed.'):]


def build_classifier(**backbone):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='SGFormer', arch=TINY, pretrain_img_size=64, out_indices=(3, ),
                          **backbone),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))


def test_official_key_names_of_the_released_model():
    with torch.device('meta'):
        keys = {to_official('backbone.' + k) for k in SGFormer(arch='s').state_dict()}
    assert {'pos_embed', 'patch_embed1.conv.4.bn.weight', 'patch_embed1.norm.bias',
            'patch_embed3.conv2.c.weight', 'block1.0.attn.q1.weight', 'block1.0.attn.sr.bias',
            'block1.0.attn.norm.weight', 'block1.1.attn.f3.weight', 'block3.1.attn.kv2.bias',
            'block3.1.attn.f2.weight', 'block4.0.attn.kv.weight', 'block4.0.attn.lepe_conv.weight',
            'block2.3.mlp.dwconv.dwconv.bias', 'norm4.weight'} <= keys
    assert not any(k.startswith('block3.') and k.endswith('f3.weight') for k in keys)  # sr 2


def test_official_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    source, target = build_classifier().eval(), build_classifier().eval()
    official = {to_official(k): v.clone() for k, v in source.state_dict().items()}
    assert recognise(official)[1] == 'SGFormer'
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save({'state_dict': official, 'state_dict_ema': official}, src)  # a timm checkpoint
    SGFORMER.main([str(src), str(dst)])
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['backbone'] == 'SGFormer'
    target.load_state_dict(checkpoint['state_dict'], strict=True)
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))
    backbone = SGFormer(arch=TINY, pretrain_img_size=64, init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    backbone.init_weights()
    for name, value in backbone.state_dict().items():
        torch.testing.assert_close(value, source.backbone.state_dict()[name], msg=name)


def test_converter_rejects_unknown_keys_and_other_families():
    official = {'patch_embed1.conv.0.c.weight': torch.zeros(1), 'block1.1.attn.f1.weight':
                torch.zeros(1)}
    assert SGFORMER.convert(official)[0] == {
        'backbone.patch_embed.convs.0.conv.weight': official['patch_embed1.conv.0.c.weight'],
        'backbone.stages.0.blocks.1.attn.aggregators.0.weight': official['block1.1.attn.f1.weight']}
    with pytest.raises(KeyError, match=r"Unknown key 'block1.0.attn.f1.weight'"):
        SGFORMER.convert(dict(official, **{'block1.0.attn.f1.weight': torch.zeros(1)}))
    with pytest.raises(KeyError, match='Unknown key'):
        SGFORMER.convert(dict(official, cls_token=torch.zeros(1)))
    with pytest.raises(KeyError, match=r'Not an official SG-Former checkpoint: expected '
                                       r'patch_embed1\.conv\.0\.c\.weight .*; found 1 keys '
                                       r'\(conv_stem\.proj1\.weight\)'):
        SGFORMER.convert({'model': {'conv_stem.proj1.weight': torch.zeros(1)}})


def test_checkpoint_of_another_pretraining_size_loads_resized():
    from mmengine.runner.checkpoint import load_state_dict
    src = SGFormer(arch=TINY, pretrain_img_size=64)
    dst = SGFormer(arch=TINY, pretrain_img_size=96)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    load_state_dict(dst, dict(state), strict=True)
    assert dst.patch_embed.pos_embed.weight.shape == (1, 24 * 24, 16)
    with torch.no_grad():
        assert all(torch.isfinite(o).all() for o in dst.eval()(torch.randn(1, 3, 65, 97)))


# ---------------------------------------------------------------- visualization
def test_visualizer_draws_the_significance_of_each_hybrid_block(tmp_path):
    """The maps are the significance the guided blocks sort by (read through the same submodule
    by a hook of the test), one per hybrid-scale block, drawn at the image's size."""
    from PIL import Image

    from conftest import load_tool
    from groupmix_backbones.visualization import visualize
    torch.manual_seed(0)
    backbone = SGFormer(arch=TINY, pretrain_img_size=64).eval()
    image = torch.randn(1, 3, 72, 88)
    sorted_by = []
    for stage in backbone.stages[:3]:
        stage.blocks[1].register_forward_pre_hook(lambda module, args: sorted_by.append(args[2]))
    maps = visualize(backbone, image)
    assert [title for title, _ in maps] == [f'stage{i}.block1 significance' for i in (1, 2, 3)]
    for (_, values), expected, stride in zip(maps, sorted_by, (4, 8, 16)):
        assert values.shape == (math.ceil(72 / stride), math.ceil(88 / stride))
        torch.testing.assert_close(values, expected[0])
    config = tmp_path / 'sgformer.py'
    config.write_text(f"default_scope = 'mmpretrain'\nmodel = dict(type='ImageClassifier', "
                      f"backbone=dict(type='SGFormer', arch={TINY}, pretrain_img_size=64))\n")
    checkpoint = tmp_path / 'sgformer.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}},
               checkpoint)
    picture = tmp_path / 'image.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (72, 88, 3), np.uint8)).save(picture)
    paths = load_tool('tools/visualization/visualize_backbone.py').main(
        [str(config), str(checkpoint), str(picture), '--out-dir', str(tmp_path / 'out')])
    assert [p.rsplit('/', 1)[1] for p in paths] == [
        f'{i:02d}_stage{i + 1}.block1_significance.png' for i in range(3)]
    assert all(np.asarray(Image.open(p)).shape[:2] == (72, 88) for p in paths)


# ---------------------------------------------------------------- compare_official
STAND_IN = '''
"""Stand-in of OliverRensu/SG-Former's sgformer.py: imports its sibling pos_embed.py, needs
np.float when a model is built, and is our classifier under the official key names."""
import numpy as np
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from pos_embed import OFFSET
from test_sgformer import to_official


def sgformer_s():
    np.float  # removed in numpy 1.24: the comparison restores it
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Classifier(MODELS.build(dict(
            type='ImageClassifier', backbone=dict(type='SGFormer', arch='s', out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=512))))


class Classifier(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def state_dict(self):
        return {to_official(k): v for k, v in self.inner.state_dict().items()}

    def forward(self, x):
        assert x.dtype == torch.float64  # sorting near-equal significances: compared in float64
        return self.inner(x, mode='tensor') + OFFSET
'''


@pytest.mark.parametrize('offset,code', [(0.0, 0), (1e-3, 1)])
def test_compare_official_imports_siblings_and_restores_numpy_float(tmp_path, capsys, in_repo,
                                                                    offset, code):
    from conftest import load_tool
    (tmp_path / 'sgformer.py').write_text(STAND_IN)
    (tmp_path / 'pos_embed.py').write_text(f'OFFSET = {offset}\n')
    config = 'mmpretrain_cfgs/sgformer/sgformer-s_8xb128_in1k.py'
    tool = load_tool('tools/analysis_tools/compare_official.py')
    assert tool.main(['--official-repo', str(tmp_path), config]) == code
    diff = float(capsys.readouterr().out.strip().splitlines()[-1].split('= ')[1].split()[0])
    assert abs(diff - offset) < 1e-9
