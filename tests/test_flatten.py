"""FLatten specifics; the options every backbone shares are in test_contract.py."""
import math
import re

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

import groupmix_backbones  # noqa: F401
from groupmix_backbones import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from groupmix_backbones.converters import FLATTEN
from groupmix_backbones.models.flatten.cswin import CSWinStripeAttention
from groupmix_backbones.models.layers import ShiftedWindowAttention, resize_pos_embed

# custom archs pre-trained at 64 px: stage maps 16, 8, 4, 2
TINY = {
    FLattenPVT: dict(embed_dims=[16, 32, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
                     mlp_ratios=[2, 2, 2, 2], pretrain_img_size=64),
    FLattenPVTv2: dict(embed_dims=[16, 32, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
                       mlp_ratios=[2, 2, 2, 2], pretrain_img_size=64),
    FLattenSwin: dict(embed_dims=[8, 16, 32, 64], depths=[1, 2, 2, 1], num_heads=[1, 2, 2, 4],
                      window_size=3, pretrain_img_size=64),
    FLattenCSWin: dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 2, 1], num_heads=[2, 2, 4, 4],
                       split_sizes=[16, 8, 2, 2], pretrain_img_size=64),
}
HOSTS = list(TINY)


# official classifiers (LeapLabTHU/FLatten-Transformer, 1000 classes); FLatten-PVT's include a
# final LayerNorm (2 x 512) that the official forward never applies and that we do not build
OFFICIAL_PARAMS = {
    FLattenPVT: dict(tiny=12_150_504, small=21_670_248, medium=37_242_216, large=50_649_192),
    FLattenPVTv2: dict(b0=3_594_824, b1=12_931_240, b2=22_548_264, b3=38_273_832, b4=51_836_968,
                       b5=67_061_544),
    FLattenSwin: dict(tiny=29_192_384, small=50_510_288, base=88_972_488, base_384=91_433_928),
    FLattenCSWin: dict(tiny=21_201_768, small=35_451_752, base=74_867_032, base_384=78_369_112),
}


@pytest.mark.parametrize('cls', HOSTS)
def test_param_counts_of_released_classifiers(cls):
    """backbone (+ final norm) + 1000-way fc = official count; built on the meta device (fast)."""
    for arch, count in OFFICIAL_PARAMS[cls].items():
        kwargs = dict(final_norm=True) if cls in (FLattenSwin, FLattenCSWin) else {}
        with torch.device('meta'):
            model = cls(arch=arch, **kwargs)
        dim = model.embed_dims[-1]
        ours = sum(p.numel() for p in model.parameters()) + dim * 1000 + 1000
        assert ours == count - (2 * 512 if cls is FLattenPVT else 0), arch


def test_pos_embed_resizing():
    pos = torch.randn(1, 16 * 16, 8)
    assert resize_pos_embed(pos, (16, 16), (16, 16)) is pos  # the pre-training grid: untouched
    const = torch.ones(1, 16 * 16, 8) * 0.5
    torch.testing.assert_close(resize_pos_embed(const, (16, 16), (9, 23)),
                               torch.full((1, 9 * 23, 8), 0.5))
    ramp = torch.arange(16.).repeat(16)[None, :, None]  # increases along the width
    out = resize_pos_embed(ramp, (16, 16), (5, 31), mode='bilinear').reshape(5, 31)
    assert (out.diff(dim=1) >= -1e-6).all() and (out.diff(dim=0).abs() < 1e-5).all()
    # every learned position embedding is used (resized) at a size that differs from pre-training
    for cls in HOSTS:
        model = cls(arch=TINY[cls]).train()
        sum(o.square().mean() for o in model(torch.randn(1, 3, 27, 45))).backward()
        for name, param in model.named_parameters():
            if name.endswith('pos_embed'):
                assert param.grad is not None and param.grad.abs().sum() > 0, name


def reference_window_attention(attn, x, hw_shape):
    """Dense softmax attention with the Swin window/shift rules written out per token pair."""
    (H, W), w, heads = hw_shape, attn.window_size, attn.num_heads
    shift = w // 2 if attn.shifted and min(H, W) > w else 0
    Hp, Wp = math.ceil(H / w) * w, math.ceil(W / w) * w
    r, c = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    r, c = ((r - shift) % Hp).flatten(), ((c - shift) % Wp).flatten()  # rolled coordinates

    def region(p, P):
        return (p >= P - w).long() + (p >= P - shift).long() if shift else torch.zeros_like(p)

    same = ((r[:, None] // w == r[None] // w) & (c[:, None] // w == c[None] // w)
            & (region(r, Hp)[:, None] == region(r, Hp)[None])
            & (region(c, Wp)[:, None] == region(c, Wp)[None]))
    dr = (r % w)[:, None] - (r % w)[None] + w - 1
    dc = (c % w)[:, None] - (c % w)[None] + w - 1
    bias = attn.rel_pos_table[dr * (2 * w - 1) + dc].permute(2, 0, 1)  # (heads, N, N)
    B, N, C = x.shape
    q, k, v = attn.qkv(x).reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) / math.sqrt(C // heads) + bias
    out = logits.masked_fill(~same, float('-inf')).softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize('hw_shape,shifted', [((10, 13), True), ((10, 13), False), ((5, 7), True),
                                              ((2, 2), False), ((12, 9), True)])
def test_shifted_windows_on_padded_maps_match_dense_reference(hw_shape, shifted):
    torch.manual_seed(0)
    attn = ShiftedWindowAttention(16, num_heads=2, window_size=4, shifted=shifted).eval()
    nn.init.normal_(attn.rel_pos_table)
    x = torch.randn(2, hw_shape[0] * hw_shape[1], 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, hw_shape), reference_window_attention(attn, x, hw_shape),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('direction', [0, 1, None])
def test_cswin_stripes_on_padded_maps_match_dense_reference(direction):
    torch.manual_seed(0)
    H, W, s, C, heads = 7, 10, 3, 8, 2
    attn = CSWinStripeAttention(C, num_heads=heads, split_size=s, direction=direction).eval()
    q, k, v = torch.randn(3, 2, H * W, C).unbind(0)
    r, c = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    stripe = {0: c // s, 1: r // s, None: torch.zeros_like(r)}[direction].flatten()
    same = stripe[:, None] == stripe[None]
    v_map = v.transpose(1, 2).reshape(2, C, H, W)
    lepe = sum(attn.lepe(v_map * (stripe == i).reshape(H, W)) * (stripe == i).reshape(H, W)
               for i in stripe.unique())  # conv inside each stripe, zero outside
    split = [t.reshape(2, H * W, heads, -1).transpose(1, 2) for t in (q, k, v)]
    logits = split[0] @ split[1].transpose(-2, -1) / math.sqrt(C // heads)
    out = logits.masked_fill(~same, float('-inf')).softmax(-1) @ split[2]
    expected = out.transpose(1, 2).reshape(2, H * W, C) + lepe.flatten(2).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(attn(q, k, v, (H, W)), expected, rtol=1e-4, atol=1e-5)


def test_errors_say_what_is_valid():
    with pytest.raises(KeyError, match='Valid names: tiny, small, base, base_384'):
        FLattenSwin(arch='huge')
    with pytest.raises(KeyError, match='Valid names: b0, b1, b2, b3, b4, b5'):
        FLattenPVTv2(arch='b6')
    with pytest.raises(KeyError, match=r"missing \['num_heads', 'split_sizes'\]"):
        FLattenCSWin(arch=dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r'embed_dims must give the channels of each stage, '
                                         r'e\.g\. \[96, 192, 384, 768\], got 96'):
        FLattenSwin(arch=dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                              window_size=7))
    with pytest.raises(ValueError, match='attn_types'):
        FLattenPVT(arch=dict(TINY[FLattenPVT], attn_types='LLX'))
    with pytest.raises(ValueError, match='whole-map'):
        FLattenCSWin(arch=dict(TINY[FLattenCSWin], attn_types='LLLS'))


# ---------------------------------------------------------------- converter
def _official_block(rest):
    """Our key inside a block -> the official one (written out independently of the converter)."""
    rest = re.sub(r'^attn\.focus_scale$', 'attn.scale', rest)
    rest = re.sub(r'^attn\.key_pos_embed$', 'attn.positional_encoding', rest)
    rest = re.sub(r'^attn\.rel_pos_table$', 'attn.relative_position_bias_table', rest)
    rest = re.sub(r'^mlp\.dwconv\.', 'mlp.dwconv.dwconv.', rest)
    rest = re.sub(r'^branches\.(\d)\.lepe\.', r'attns.\1.get_v.', rest)
    rest = re.sub(r'^branches\.(\d)\.focus_scale$', r'attns.\1.scale', rest)
    rest = re.sub(r'^branches\.(\d)\.key_pos_embed$', r'attns.\1.positional_encoding', rest)
    return re.sub(r'^branches\.', 'attns.', rest)


def to_official(host, key):
    if key.startswith('head.fc.'):
        return 'head.' + key[len('head.fc.'):]
    key = key[len('backbone.'):]
    m = re.match(r'stages\.(\d)\.blocks\.(\d+)\.(.+)', key)
    if m:
        i, j, rest = int(m[1]), m[2], _official_block(m[3])
        return {'FLattenPVT': f'block{i + 1}.{j}.{rest}', 'FLattenPVTv2': f'block{i + 1}.{j}.{rest}',
                'FLattenSwin': f'layers.{i}.blocks.{j}.{rest}',
                'FLattenCSWin': f'stage{i + 1}.{j}.{rest}'}[host]
    m = re.match(r'(patch_embed|stages\.(\d)\.downsample)\.(.+)', key)
    if m:
        i, rest = int(m[2] or 0), m[3]
        if host in ('FLattenPVT', 'FLattenPVTv2'):
            return f'pos_embed{i + 1}' if rest == 'pos_embed' else f'patch_embed{i + 1}.{rest}'
        if host == 'FLattenSwin':
            return f'patch_embed.{rest}' if i == 0 else f'layers.{i - 1}.downsample.{rest}'
        if i == 0:
            return rest.replace('proj.', 'stage1_conv_embed.0.').replace('norm.',
                                                                        'stage1_conv_embed.2.')
        return f'merge{i}.' + rest.replace('proj.', 'conv.')
    m = re.match(r'stages\.(\d)\.norm\.(.+)', key)
    if m:
        return f'norm{int(m[1]) + 1}.{m[2]}'
    assert key.startswith('out_norm.'), key
    return 'norm.' + key[len('out_norm.'):]


def build_classifier(cls):
    """Backbone + GAP + LinearClsHead; every TINY arch ends with 64 channels."""
    backbone = dict(type=cls.__name__, arch=TINY[cls], out_indices=(3,))
    if cls in (FLattenSwin, FLattenCSWin):
        backbone['final_norm'] = True
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(type='ImageClassifier', backbone=backbone,
                                 neck=dict(type='GlobalAveragePooling'),
                                 head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))


@pytest.mark.parametrize('cls', HOSTS)
def test_official_checkpoint_round_trip(cls, tmp_path):
    host = cls.__name__
    torch.manual_seed(0)
    source, target = build_classifier(cls).eval(), build_classifier(cls).eval()
    official = {to_official(host, k): v.clone() for k, v in source.state_dict().items()}
    if cls is FLattenSwin:  # derived buffers stored by the official model
        official['layers.2.blocks.1.attn.relative_position_index'] = torch.zeros(9, 9).long()
        official['layers.2.blocks.1.attn_mask'] = torch.zeros(1, 9, 9)
        assert 'layers.2.blocks.1.attn.relative_position_bias_table' in official
        assert 'layers.1.downsample.reduction.weight' in official
    if cls is FLattenPVT:  # built but unused by the official forward
        official['norm.weight'], official['norm.bias'] = torch.ones(64), torch.zeros(64)
        assert {'pos_embed1', 'block4.0.attn.positional_encoding'} <= set(official)
    if cls is FLattenCSWin:
        assert {'stage1_conv_embed.0.weight', 'merge3.conv.weight', 'stage3.1.attns.1.get_v.weight',
                'stage1.0.attns.0.positional_encoding'} <= set(official)
    if cls is FLattenPVTv2:
        assert {'norm4.weight', 'block2.0.mlp.dwconv.dwconv.weight'} <= set(official)
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save({'model': official} if cls in (FLattenSwin, FLattenPVT) else official, src)
    FLATTEN.main([str(src), str(dst)])
    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint['meta']['backbone'] == host
    target.load_state_dict(checkpoint['state_dict'], strict=True)
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(target(x, mode='tensor'), source(x, mode='tensor'))
    # the same file initialises a detection/segmentation backbone through init_cfg
    backbone = cls(arch=TINY[cls], init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                                 prefix='backbone.'))
    backbone.init_weights()
    for name, value in backbone.state_dict().items():
        torch.testing.assert_close(value, source.backbone.state_dict()[name], msg=name)


def test_converter_rejects_unknown_keys():
    official = {'patch_embed1.proj.weight': torch.zeros(1), 'block1.0.attn.q.weight': torch.zeros(1)}
    assert FLATTEN.convert(official)[1] == 'FLattenPVTv2'
    with pytest.raises(KeyError, match='block1.0.attn.unknown'):
        FLATTEN.convert(dict(official, **{'block1.0.attn.unknown': torch.zeros(1)}))
    with pytest.raises(KeyError, match='Unknown key'):
        FLATTEN.convert(dict(official, cls_token=torch.zeros(1)))
    with pytest.raises(KeyError, match='Not an official FLatten'):
        FLATTEN.convert({'model': {'conv1.weight': torch.zeros(1)}})


def test_checkpoint_of_another_pretraining_size_loads_resized():
    """A 224 checkpoint loads into the 384 setting (as the released 384 fine-tunes start):
    the key position encodings and relative position tables are interpolated, not dropped."""
    from mmengine.runner.checkpoint import load_state_dict
    arch = dict(embed_dims=[32, 64, 128, 256], depths=[1, 2, 1, 1], num_heads=[1, 2, 4, 8])
    src = FLattenSwin(arch=dict(arch, window_size=7), pretrain_img_size=224)
    dst = FLattenSwin(arch=dict(arch, window_size=12), pretrain_img_size=384)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    load_state_dict(dst, dict(state), strict=True)
    for name, param in dst.state_dict().items():
        if name.endswith(('key_pos_embed', 'rel_pos_table')):
            assert param.shape != state[name].shape
            assert (param - param.mean()).abs().sum() > 0  # interpolated, not left at zero
    with torch.no_grad():
        assert all(torch.isfinite(o).all() for o in dst.eval()(torch.randn(1, 3, 65, 97)))
