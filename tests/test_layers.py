"""Shared layers: softmax attention through SDPA's 4-D (fusable) form, and its FLOP count."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from groupmix_backbones import FLattenCSWin, FLattenSwin
from groupmix_backbones.analysis import count_flops
from groupmix_backbones.models.layers import (MASK_VALUE, ShiftedWindowAttention,
                                              relative_position_index, shifted_window_mask,
                                              softmax_attention, window_partition,
                                              window_reverse)


def written_out_attention(q, k, v, mask=None):
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits + mask
    return logits.softmax(-1) @ v


@pytest.mark.parametrize('lead', [(), (2, ), (2, 3)])
@pytest.mark.parametrize('masked', [False, True])
def test_softmax_attention_matches_written_out_reference(lead, masked):
    torch.manual_seed(0)
    q, k, v = (torch.randn(*lead, 4, 5, 8) for _ in range(3))
    mask = None
    if masked:  # padded keys per window, broadcast over heads and queries
        valid = torch.rand(*lead, 1, 1, 5) > 0.3
        valid[..., 0] = True
        mask = torch.zeros(valid.shape).masked_fill(~valid, MASK_VALUE)
    torch.testing.assert_close(softmax_attention(q, k, v, mask=mask),
                               written_out_attention(q, k, v, mask))


class CallRecorder(TorchFunctionMode):
    """Records the tensor ranks of every scaled_dot_product_attention call."""

    def __init__(self):
        super().__init__()
        self.ranks = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            tensors = list(args[:3]) + [kwargs.get('attn_mask')]
            self.ranks.append([t.dim() for t in tensors if t is not None])
        return func(*args, **kwargs)


@pytest.mark.parametrize('cls,arch', [
    (FLattenSwin, dict(embed_dims=[8, 16, 32, 64], depths=[1, 2, 2, 1], num_heads=[1, 2, 2, 4],
                       window_size=3, pretrain_img_size=64)),
    (FLattenCSWin, dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 2, 1], num_heads=[2, 2, 4, 4],
                        split_sizes=[16, 8, 2, 2], pretrain_img_size=64))])
def test_window_and_stripe_attention_call_sdpa_in_4d(cls, arch):
    """PyTorch's fused kernels take (batch, heads, tokens, channels) only."""
    model = cls(arch=arch).eval()
    with torch.no_grad(), CallRecorder() as recorder:
        model(torch.randn(2, 3, 45, 61))  # padded windows and stripes: masks too
    assert recorder.ranks and all(set(ranks) == {4} for ranks in recorder.ranks)
    assert any(len(ranks) == 4 for ranks in recorder.ranks)  # with a mask


class WrittenOutWindowAttention(torch.nn.Module):
    """Swin window attention as the official code writes it (explicit matmuls)."""

    def __init__(self, attn):
        super().__init__()
        self.attn = attn

    def forward(self, x, hw_shape):
        attn, (H, W), B, C = self.attn, hw_shape, x.shape[0], x.shape[2]
        w, heads = attn.window_size, attn.num_heads
        shift = w // 2 if attn.shifted and min(H, W) > w else 0
        x = F.pad(x.reshape(B, H, W, C), (0, 0, 0, -W % w, 0, -H % w))
        padded = x.shape[1:3]
        x = x.roll((-shift, -shift), dims=(1, 2))
        windows = window_partition(x, w)
        q, k, v = attn.qkv(windows).reshape(windows.shape[0], w * w, 3, heads, -1).permute(
            2, 0, 3, 1, 4)
        logits = (q * (C // heads) ** -0.5) @ k.transpose(-2, -1)
        bias = attn.rel_pos_table[relative_position_index(w, x.device).reshape(-1)].reshape(
            w * w, w * w, -1).permute(2, 0, 1)
        logits = logits + bias
        mask = shifted_window_mask((H, W), padded, w, shift, x.device)
        if mask is not None:
            logits = (logits.reshape(B, -1, heads, w * w, w * w) + mask[:, None]).flatten(0, 1)
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(-1, w * w, C)
        out = window_reverse(out, w, padded).roll((shift, shift), dims=(1, 2))
        return attn.proj(out[:, :H, :W].reshape(B, H * W, C))


@pytest.mark.parametrize('hw_shape', [(8, 8), (10, 13)])
def test_sdpa_flops_count_as_the_written_out_matmuls(hw_shape):
    torch.manual_seed(0)
    attn = ShiftedWindowAttention(16, num_heads=2, window_size=4, shifted=True).eval()
    torch.nn.init.normal_(attn.rel_pos_table)
    reference = WrittenOutWindowAttention(attn).eval()
    x = torch.randn(2, hw_shape[0] * hw_shape[1], 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, hw_shape), reference(x, hw_shape))
    ours, uncounted = count_flops(attn, (x, hw_shape))
    theirs, _ = count_flops(reference, (x, hw_shape))
    assert ours == theirs
    assert 'aten::scaled_dot_product_attention' not in uncounted
    # the two matmuls are there: more than the qkv and output projections alone
    tokens = 2 * math.ceil(hw_shape[0] / 4) * 4 * math.ceil(hw_shape[1] / 4) * 4
    assert ours > tokens * 16 * 16 * 4


def test_resized_grids_are_cached_per_size_dtype_and_version():
    from groupmix_backbones.models.layers import GridPositionEmbedding, resize_pos_embed
    embed = GridPositionEmbedding(8, grid=(4, 4))
    torch.nn.init.normal_(embed.weight)

    def fresh(hw):
        return resize_pos_embed(embed.weight, (4, 4), hw, mode='bilinear', align_corners=True)

    with torch.no_grad():
        first = embed.resized(embed.weight, embed.grid, (5, 7))
        assert embed.resized(embed.weight, embed.grid, (5, 7)) is first  # cached
        other = embed.resized(embed.weight, embed.grid, (7, 5))
        assert torch.equal(first, fresh((5, 7))) and torch.equal(other, fresh((7, 5)))
        assert embed.resized(embed.weight, embed.grid, (4, 4)) is embed.weight
        embed.weight.add_(1.0)  # an optimizer step or a load: a new version
        assert torch.equal(embed.resized(embed.weight, embed.grid, (5, 7)), fresh((5, 7)))
        embed.double()
        assert embed.resized(embed.weight, embed.grid, (5, 7)).dtype == torch.float64
        for size in range(10, 30):  # bounded
            embed.resized(embed.weight, embed.grid, (size, size))
        assert len(embed._resized_grids) == embed.max_cached_grids


@pytest.mark.parametrize('align_corners', [False, True])
def test_bicubic_matrix_resizes_as_f_interpolate(align_corners):
    """The exported graphs resize position grids as two products with these matrices (ONNX
    Runtime's cubic Resize is slow): the same values as torch's bicubic kernel, border taps
    clamped, for upsampling, downsampling and the same size."""
    from groupmix_backbones.models.layers.shape import bicubic_matrix
    for src, dst in [(56, 128), (7, 16), (14, 14), (56, 17), (3, 9), (9, 2)]:
        grid = torch.randn(1, 5, src, 1)
        expected = F.interpolate(grid, size=(dst, 1), mode='bicubic',
                                 align_corners=align_corners)[0, :, :, 0]
        got = (bicubic_matrix(src, dst, align_corners, grid) @ grid[0, :, :, 0].T).T
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_resized_grids_train_and_mix_with_inference_mode():
    from groupmix_backbones.models.layers import GridPositionEmbedding
    embed = GridPositionEmbedding(8, grid=(4, 4))
    tokens = torch.randn(2, 35, 8)
    with torch.inference_mode():
        embed(tokens, (5, 7))  # cached while inference mode is on
    embed(tokens.requires_grad_(), (5, 7)).square().sum().backward()
    assert embed.weight.grad is not None and embed.weight.grad.abs().sum() > 0  # not the cache
    embed.weight.requires_grad_(False)  # frozen: the cached table serves a training step
    out = embed(tokens, (5, 7)).square().sum()
    out.backward()
    assert tokens.grad is not None
    with torch.inference_mode():  # a module built in inference mode: resized every call
        built = GridPositionEmbedding(8, grid=(4, 4))
        assert built(tokens, (5, 7)).shape == tokens.shape


class CountOps(TorchFunctionMode):
    """The torch functions called inside it, by name."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, '__name__', str(func)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('shape', [(2, 300, 48), (4, 7, 9, 48), (3, 48)])
def test_linear_rows_as_a_convolution_compute_nn_linear(shape, monkeypatch):
    """layers.Linear: the parameters, names and init of nn.Linear; many rows on CPU go through a
    1x1 convolution (where chosen), few rows and tracing through F.linear; outputs and gradients
    agree."""
    from mmengine.model import initialize

    from groupmix_backbones.models.layers import Linear, linear
    monkeypatch.setattr(linear, 'CPU_KERNEL', 'conv')
    torch.manual_seed(0)
    ours, reference = Linear(48, 80), torch.nn.Linear(48, 80)
    reference.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == ['weight', 'bias'] and type(ours).__name__ == 'Linear'
    x = torch.randn(shape, requires_grad=True)
    with CountOps() as ops:
        out = ours(x)
    many_rows = x.numel() // 48 >= 128
    assert ('conv2d' in ops.names) == many_rows and ('linear' in ops.names) != many_rows
    torch.testing.assert_close(out, reference(x), rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), [x, ours.weight, ours.bias])
    expected = torch.autograd.grad(reference(x).square().sum(),
                                   [x, reference.weight, reference.bias])
    for grad, want in zip(grads, expected):
        torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        torch.testing.assert_close(ours(x).float(), out, rtol=0.05, atol=0.05)
    traced = torch.jit.trace(ours, x.detach())
    assert 'aten::linear' in str(traced.graph) and 'conv' not in str(traced.graph)
    initialize(ours, dict(type='Constant', layer='Linear', val=0.5, bias=0.))
    assert (ours.weight == 0.5).all()  # mmengine's init finds it by its class name


def test_linear_kernel_is_timed_once_per_shape(monkeypatch):
    """CPU_KERNEL 'auto': the faster kernel is timed once per weight shape and row bucket and
    then kept; 'linear' keeps F.linear."""
    from groupmix_backbones.models.layers import Linear, linear
    assert linear.CPU_KERNEL == 'conv'  # the default: every process rounds alike
    monkeypatch.setattr(linear, 'CPU_KERNEL', 'auto')
    monkeypatch.setattr(linear, '_CONV_FASTER', {})
    timed = []
    real = linear.conv_is_faster
    monkeypatch.setattr(linear, 'conv_is_faster',
                        lambda *args, **kwargs: timed.append(args[0]) or real(*args, **kwargs))
    layer = Linear(32, 64)
    for rows in (300, 400, 300, 600):
        x = torch.randn(rows, 32)
        layer(x)  # (the first call of a shape also times both kernels)
        with CountOps() as ops:
            out = layer(x)
        chosen = linear._CONV_FASTER[(64, 32, True, torch.float32, 512 if rows < 512 else 1024,
                                      torch.get_num_threads())]
        assert ('conv2d' in ops.names) == chosen
        torch.testing.assert_close(out, torch.nn.functional.linear(x, layer.weight, layer.bias),
                                   rtol=1e-5, atol=1e-5)
    assert timed == [512, 1024]
    monkeypatch.setattr(linear, 'CPU_KERNEL', 'linear')
    with CountOps() as ops:
        layer(torch.randn(300, 32))
    assert 'conv2d' not in ops.names and 'linear' in ops.names
