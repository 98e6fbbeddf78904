"""HaloAttention: against a per-query reference, against the official forward (written out here,
with timm's rel_logits_1d) at block multiples, no padding leaks, and its caches."""
import copy
import logging

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from timm.layers.halo_attn import rel_logits_1d

from groupmix_backbones.models.layers import (MASK_VALUE, HaloAttention, adapt_saved_grids,
                                              halo_key_mask, halo_relative_index,
                                              make_divisible, recording_attention)
from groupmix_backbones.visualization.attention import attention_row, record_attention


def randomised(attn: HaloAttention, std: float = 0.5) -> HaloAttention:
    """Random weights everywhere (biases included), so that no term can hide behind a zero."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in attn.parameters():
            param.normal_(0, std)
    return attn


def per_query_reference(attn, x, hw_shape):
    """Each real query pixel attends, one by one, to the real pixels of its block's halo window,
    with relative logits q . height_rel[key row in window - query row in block + win - 1] and the
    same along columns."""
    (H, W), B = hw_shape, x.shape[0]
    b, halo, win, heads = attn.block_size, attn.halo_size, attn.win_size, attn.num_heads
    dqk, dv = attn.dim_head_qk, attn.dim_head_v
    image = x.reshape(B, H, W, -1)
    q = attn.q(image).reshape(B, H, W, heads, dqk)
    k, v = attn.kv(image).reshape(B, H, W, heads, dqk + dv).split([dqk, dv], dim=-1)
    outputs = []
    for y in range(H):
        for x_ in range(W):
            top, left = y // b * b - halo, x_ // b * b - halo
            keys = [(r, c) for r in range(top, top + win) for c in range(left, left + win)
                    if 0 <= r < H and 0 <= c < W]
            rows, cols = torch.tensor(keys).T
            query = q[:, y, x_]  # (B, heads, dqk)
            logits = torch.einsum('bhd,bnhd->bhn', query, k[:, rows, cols]) * dqk ** -0.5
            logits = logits + torch.einsum(
                'bhd,nd->bhn', query, attn.height_rel[rows - top - y % b + win - 1])
            logits = logits + torch.einsum(
                'bhd,nd->bhn', query, attn.width_rel[cols - left - x_ % b + win - 1])
            outputs.append(torch.einsum('bhn,bnhd->bhd', logits.softmax(-1), v[:, rows, cols]))
    return attn.proj(torch.stack(outputs, 1).reshape(B, H * W, heads * dv))


def official_forward(attn, x, hw_shape):
    """The official STM-Evaluation HaloAttn forward (pos_embed_type='query_related'), on a map
    with sides multiple of the block: 1x1 conv kv, unfold, timm's rel_logits_1d, unfolded mask,
    masked_fill, explicit softmax."""
    (H, W), B = hw_shape, x.shape[0]
    b, halo, win, heads = attn.block_size, attn.halo_size, attn.win_size, attn.num_heads
    dqk, dv = attn.dim_head_qk, attn.dim_head_v
    nh, nw = H // b, W // b
    image = x.reshape(B, H, W, -1)
    q = attn.q(image).reshape(B, nh, b, nw, b, heads, dqk).permute(0, 5, 1, 3, 2, 4, 6)
    q = q.reshape(B, heads, nh * nw, b * b, dqk)
    conv_weight = attn.kv.weight[:, :, None, None]  # the official kv is a 1x1 Conv2d
    kv = F.conv2d(image.permute(0, 3, 1, 2), conv_weight, attn.kv.bias)
    kv = F.pad(kv, [halo] * 4).unfold(2, win, b).unfold(3, win, b)
    kv = kv.reshape(B, heads, dqk + dv, nh * nw, win * win).permute(0, 1, 3, 4, 2)
    k, v = kv.split([dqk, dv], dim=-1)
    # query-related position logits, per (batch * heads * blocks) of b x b queries
    q_blocks = q.reshape(-1, b, b, dqk)
    rel_w = rel_logits_1d(q_blocks, attn.width_rel, permute_mask=(0, 1, 3, 2, 4))
    rel_h = rel_logits_1d(q_blocks.transpose(1, 2), attn.height_rel, permute_mask=(0, 3, 1, 4, 2))
    rel = (rel_h + rel_w).reshape(B, heads, nh * nw, b * b, win * win)
    logits = (q * dqk ** -0.5) @ k.transpose(-1, -2) + rel
    ones = F.pad(torch.ones(1, 1, H, W), [halo] * 4).unfold(2, win, b).unfold(3, win, b)
    outside = ~ones.reshape(1, nh * nw, win * win).unsqueeze(-2).bool()
    logits = logits.masked_fill(outside, -torch.finfo(logits.dtype).max)
    out = (logits.softmax(-1) @ v).reshape(B, heads, nh, nw, b, b, dv)
    out = out.permute(0, 2, 4, 3, 5, 1, 6).reshape(B, H, W, heads * dv)
    return attn.proj(out).reshape(B, H * W, -1)


def gradients(module, x, out):
    grads = torch.autograd.grad(out.square().sum(), [x, *module.parameters()])
    return dict(zip(['x'] + [name for name, _ in module.named_parameters()], grads))


@pytest.mark.parametrize('hw_shape,dim,heads,block,halo,bias', [
    ((14, 7), 16, 2, 7, 3, False),  # block multiples: only the halo is masked
    ((9, 11), 16, 2, 7, 3, True),  # padded to 14 x 14
    ((1, 1), 16, 2, 7, 3, True),  # a single pixel in a padded block
    ((5, 12), 36, 3, 4, 1, True),  # other block and halo; dqk 13 (make_divisible) != dv 12
    ((3, 8), 8, 1, 2, 2, False),  # halo as large as the block
])
def test_matches_per_query_reference_values_and_gradients(hw_shape, dim, heads, block, halo,
                                                          bias):
    attn = randomised(HaloAttention(dim, num_heads=heads, block_size=block, halo_size=halo,
                                    qkv_bias=bias)).double()
    x = torch.randn(2, hw_shape[0] * hw_shape[1], dim, dtype=torch.float64, requires_grad=True)
    ours, theirs = attn(x, hw_shape), per_query_reference(attn, x, hw_shape)
    torch.testing.assert_close(ours, theirs)
    expected = gradients(attn, x, theirs)
    for name, grad in gradients(attn, x, ours).items():
        torch.testing.assert_close(grad, expected[name], msg=name)


@pytest.mark.parametrize('hw_shape,dim,heads',
                         [((7, 7), 16, 2), ((14, 21), 24, 3), ((21, 14), 32, 1)])
def test_matches_official_forward_at_block_multiples(hw_shape, dim, heads):
    """Within 1e-5 in float32 (logits of a few units), and to float64 rounding."""
    attn = randomised(HaloAttention(dim, num_heads=heads), std=0.2).eval()
    x = torch.randn(2, hw_shape[0] * hw_shape[1], dim)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, hw_shape), official_forward(attn, x, hw_shape),
                                   rtol=1e-5, atol=1e-5)
        attn, x = attn.double(), x.double()
        torch.testing.assert_close(attn(x, hw_shape), official_forward(attn, x, hw_shape))


def test_relative_logits_index_is_timm_rel_logits_1d():
    """Along one axis, query i of the block and key j of the window read row j - i + win - 1."""
    block, win, dim = 5, 9, 4
    q, table = torch.randn(3, block, block, dim), torch.randn(2 * win - 1, dim)
    theirs = rel_logits_1d(q, table, permute_mask=(0, 1, 3, 2, 4))  # (3, row, col, win, win)
    index = halo_relative_index(block, win, torch.device('cpu'))
    assert index.shape == (block, win)
    ours = torch.einsum('...cd,ckd->...ck', q, table[index])  # (3, row, col, key column)
    torch.testing.assert_close(theirs[:, :, :, 0], ours)
    assert (theirs == theirs[:, :, :, :1]).all()  # the width term does not depend on the key row


@pytest.mark.parametrize('hw_shape', [(9, 11), (3, 3), (8, 15)])
def test_padded_positions_never_leak(hw_shape):
    """Whatever q and kv hold at the pixels padded to block multiples, real outputs and their
    gradients are the same: padded keys are masked and padded queries cropped."""
    attn = randomised(HaloAttention(16, num_heads=2, qkv_bias=True))
    x = torch.randn(2, hw_shape[0] * hw_shape[1], 16, requires_grad=True)
    clean_out = attn(x, hw_shape)
    clean = gradients(attn, x, clean_out)

    def garbage_in_padding(module, args, out):
        H, W = hw_shape
        outside = torch.ones(out.shape[1:3], dtype=torch.bool)
        outside[:H, :W] = False
        return out + 10 * torch.randn(out.shape) * outside[:, :, None]

    hooks = [attn.q.register_forward_hook(garbage_in_padding),
             attn.kv.register_forward_hook(garbage_in_padding)]
    try:
        dirty_out = attn(x, hw_shape)
        dirty = gradients(attn, x, dirty_out)
    finally:
        for hook in hooks:
            hook.remove()
    torch.testing.assert_close(dirty_out, clean_out)
    for name, grad in dirty.items():
        torch.testing.assert_close(grad, clean[name], msg=name)


def test_mask_covers_halo_and_block_padding():
    rows, cols = halo_key_mask((8, 3), 7, 3, torch.device('cpu'), torch.float32)
    assert rows.shape == (2, 13) and cols.shape == (1, 13)
    # block row 0: window rows -3..9 of 8 rows -> 0..7; block row 1: rows 4..16 -> 4..7
    assert (rows[0] == 0).tolist() == [False] * 3 + [True] * 8 + [False] * 2
    assert (rows[1] == 0).tolist() == [True] * 4 + [False] * 9
    assert (cols[0] == 0).tolist() == [False] * 3 + [True] * 3 + [False] * 7  # columns 0..2
    assert set(torch.cat([rows, cols]).unique().tolist()) == {0., MASK_VALUE}


def test_caches_are_per_size_device_and_dtype():
    key = ((9, 11), 7, 3)
    cpu32 = halo_key_mask(*key, torch.device('cpu'), torch.float32)
    assert halo_key_mask(*key, torch.device('cpu'), torch.float32) is cpu32  # computed once
    cpu16 = halo_key_mask(*key, torch.device('cpu'), torch.float16)
    meta = halo_key_mask(*key, torch.device('meta'), torch.float32)
    assert (cpu16[0].dtype, cpu16[0].device.type) == (torch.float16, 'cpu')
    assert (meta[1].dtype, meta[1].device.type) == (torch.float32, 'meta')
    other = halo_key_mask((9, 12), 7, 3, torch.device('cpu'), torch.float32)
    assert other[1].shape == cpu32[1].shape and not torch.equal(other[1], cpu32[1])
    assert halo_relative_index(7, 13, torch.device('meta')).device.type == 'meta'
    # a whole forward per dtype and device, same sizes, each in its own dtype and device
    attn = randomised(HaloAttention(16, num_heads=2), std=0.2)
    x = torch.randn(1, 99, 16)
    with torch.no_grad():
        out32 = attn(x, (9, 11))
        out16 = copy.deepcopy(attn).bfloat16()(x.bfloat16(), (9, 11))
        out64 = attn.double()(x.double(), (9, 11))
        assert (out16.dtype, out64.dtype) == (torch.bfloat16, torch.float64)
        torch.testing.assert_close(out64, per_query_reference(attn, x.double(), (9, 11)))
        torch.testing.assert_close(out32, out64.float())
        torch.testing.assert_close(out16.float(), out32, rtol=0.05, atol=0.05)
        out_meta = attn.float().to('meta')(x.to('meta'), (9, 11))
    assert out_meta.device.type == 'meta' and out_meta.shape == x.shape


def test_tables_first_built_at_inference_train_afterwards():
    halo_relative_index.cache_clear()
    halo_key_mask.cache_clear()
    attn = HaloAttention(8, num_heads=1)
    x = torch.randn(1, 30, 8, requires_grad=True)
    with torch.inference_mode():
        attn(x.detach(), (5, 6))
    attn(x, (5, 6)).sum().backward()  # the cached index is saved for backward
    assert x.grad is not None and attn.height_rel.grad is not None


def test_parameters_and_head_dims():
    attn = HaloAttention(96, num_heads=3)
    shapes = {name: tuple(p.shape) for name, p in attn.named_parameters()}
    assert shapes == {'q.weight': (96, 96), 'kv.weight': (192, 96), 'height_rel': (25, 32),
                      'width_rel': (25, 32), 'proj.weight': (96, 96), 'proj.bias': (96, )}
    assert [make_divisible(v) for v in (8, 10, 12, 36, 96, 100)] == [8, 16, 16, 40, 96, 104]
    with pytest.raises(ValueError, match='divisible by num_heads'):
        HaloAttention(10, num_heads=3)


def test_tables_of_another_window_are_resized_on_load():
    """Block 7 + halo 3 tables (25 rows) into a block 4 + halo 2 layer (15 rows): linear with
    aligned corners (the official loader's), ends kept; equal tables untouched."""
    saved = torch.nn.Sequential(HaloAttention(16, num_heads=2)).state_dict()
    model = torch.nn.Sequential(HaloAttention(16, num_heads=2, block_size=4, halo_size=2))
    state = dict(saved)
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()  # whatever earlier tests left current
    logger.addHandler(handler)
    try:
        adapt_saved_grids(model, state)
    finally:
        logger.removeHandler(handler)
    model.load_state_dict(state)
    table = model[0].height_rel.detach()
    assert table.shape == (15, 8)
    torch.testing.assert_close(table[[0, -1]], saved['0.height_rel'][[0, -1]])
    torch.testing.assert_close(table[7], saved['0.height_rel'][12])  # the centre stays the centre
    step = 24 / 14  # new row 1 lies at old row 1.714
    torch.testing.assert_close(table[1], saved['0.height_rel'][1] * (2 - step)
                               + saved['0.height_rel'][2] * (step - 1))
    assert 'Resized 0.width_rel from 25 to 15 relative positions (linear)' in messages
    same = dict(saved)
    adapt_saved_grids(torch.nn.Sequential(HaloAttention(16, num_heads=2)), same)
    assert all(same[key] is saved[key] for key in saved)
    other_channels = {'0.height_rel': torch.randn(25, 4)}
    adapt_saved_grids(model, other_channels)
    assert other_channels['0.height_rel'].shape == (25, 4)  # left to the shape check


@pytest.mark.parametrize('hw_shape', [(9, 11), (8, 8)])
def test_recorded_weights_give_the_output_at_every_cell(hw_shape):
    """While recording, the probe gets (B, blocks, heads, b*b, win*win) weights laid on the right
    cells: each real query's row on the map, applied to v, gives the module's output there; keys
    outside the map get nothing. Not recording: the probe is not called."""
    attn = randomised(HaloAttention(16, num_heads=2, block_size=4, halo_size=1)).eval()
    (H, W), heads = hw_shape, attn.num_heads
    x = torch.randn(2, H * W, 16)
    calls = []
    handle = attn.attn_weights.register_forward_hook(lambda *args: calls.append(args))
    with torch.no_grad():
        fused = attn(x, hw_shape)
    handle.remove()
    assert not calls
    record = record_attention(attn, lambda: attn(x, hw_shape), {'': attn.attn_weights})['']
    with torch.no_grad(), recording_attention(attn):
        explicit = attn(x, hw_shape)
    torch.testing.assert_close(explicit, fused, rtol=0, atol=1e-5)
    blocks = -(-H // 4) * -(-W // 4)
    assert record['weights'].shape == (2, blocks, heads, 16, 36)
    torch.testing.assert_close(record['weights'].sum(-1), torch.ones(2, blocks, heads, 16))
    assert (record['weights'] * (record['keys'] < 0)[None, :, None, None]).abs().max() < 1e-30
    v = attn.kv(x[:1]).reshape(H, W, heads, -1)[..., attn.dim_head_qk:]
    with torch.no_grad():
        for y in range(H):
            for x_ in range(W):
                weights = attention_row(record, (y, x_)).weights  # (heads, H, W)
                out = attn.proj(torch.einsum('hyx,yxhd->hd', weights, v).reshape(-1))
                torch.testing.assert_close(out, fused[0, y * W + x_], rtol=0, atol=1e-5)

