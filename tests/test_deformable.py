"""DCNv3 (shared layer): the sampling core against a written-out bilinear reference and mmcv's own
CPU reference, values and gradients, points inside, on the borders of and outside the map; the
module against a written-out port of the official arithmetic (padded value, reference points over
the padded map); the compiled CUDA op against the PyTorch path where CUDA is available."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from groupmix_backbones.models.layers import DCNv3, deformable_sample, kernel_grid
from groupmix_backbones.models.layers import deformable

H, W = 5, 7


def bilinear_reference(value, locations, weights):
    """Explicit loops over batch, query, head and point; bilinear interpolation of the four
    neighbouring pixels, zero outside the map; pixel centres at (i + 0.5) / size."""
    B, H, W, heads, d = value.shape
    _, N, _, points, _ = locations.shape
    zero = value.new_zeros(d)

    def pixel(b, y, x, h):
        return value[b, y, x, h] if 0 <= y < H and 0 <= x < W else zero

    out = []
    for b in range(B):
        for n in range(N):
            for h in range(heads):
                acc = zero
                for p in range(points):
                    px = locations[b, n, h, p, 0] * W - 0.5
                    py = locations[b, n, h, p, 1] * H - 0.5
                    x0, y0 = int(math.floor(px.item())), int(math.floor(py.item()))
                    fx, fy = px - x0, py - y0
                    sample = (pixel(b, y0, x0, h) * (1 - fx) * (1 - fy)
                              + pixel(b, y0, x0 + 1, h) * fx * (1 - fy)
                              + pixel(b, y0 + 1, x0, h) * (1 - fx) * fy
                              + pixel(b, y0 + 1, x0 + 1, h) * fx * fy)
                    acc = acc + weights[b, n, h, p] * sample
                out.append(acc)
    return torch.stack(out).reshape(B, N, heads * d)


def normalised(pixels, hw=(H, W)):
    """Pixel coordinates (x, y), pixel centres at integers, -> normalised locations."""
    return (pixels + 0.5) / torch.tensor([hw[1], hw[0]], dtype=pixels.dtype)


def generic_pixels(shape, generator):
    """Random (x, y) over the map and a margin around it: inside, half outside (one neighbour
    inside), and wholly outside; never an integer, where bilinear sampling has a kink."""
    x = torch.rand(shape, generator=generator, dtype=torch.float64) * (W + 3) - 2
    y = torch.rand(shape, generator=generator, dtype=torch.float64) * (H + 3) - 2
    far = torch.tensor([[-40.3, 3.2], [2.7, 55.1], [-1.4, -0.6], [W - 0.3, H - 0.6]],
                       dtype=torch.float64)  # far out, far out, half out, half out
    pixels = torch.stack((x, y), -1)
    pixels.view(-1, 2)[:len(far)] = far
    return pixels


def border_pixels(shape, generator):
    """Points exactly on the map's borders and one pixel beyond, on both axes."""
    xs = torch.tensor([-1, -0.5, 0, 2, W - 1, W - 0.5, W], dtype=torch.float64)
    ys = torch.tensor([-1, -0.5, 0, 1.5, H - 1, H - 0.5, H], dtype=torch.float64)
    numel = math.prod(shape)
    pick = torch.randint(len(xs), (2, numel), generator=generator)
    return torch.stack((xs[pick[0]], ys[pick[1]]), -1).reshape(*shape, 2)


def sample_inputs(pixels_of, *, B=2, N=6, heads=3, d=4, points=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    value = torch.randn(B, H, W, heads, d, generator=generator, dtype=torch.float64)
    locations = normalised(pixels_of((B, N, heads, points), generator))
    weights = torch.randn(B, N, heads, points, generator=generator, dtype=torch.float64)
    return [t.requires_grad_() for t in (value, locations, weights)]


def values_and_grads(fn, inputs, grad_of):
    out = fn(*inputs)
    grads = torch.autograd.grad(out, [inputs[i] for i in grad_of],
                                torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
    return out, grads


def mmcv_reference(value, locations, weights):
    B, H, W, heads, d = value.shape
    return multi_scale_deformable_attn_pytorch(
        value.reshape(B, H * W, heads, d), torch.tensor([[H, W]]), locations[:, :, :, None],
        weights[:, :, :, None])


@pytest.mark.parametrize('reference', [bilinear_reference, mmcv_reference])
@pytest.mark.parametrize('pixels_of, grad_of', [
    (generic_pixels, (0, 1, 2)),
    # on borders bilinear sampling is continuous but has a kink: locations' gradients there are
    # one-sided and depend on rounding, so only values and the value/weight gradients are compared
    (border_pixels, (0, 2))])
def test_sample_matches_references(reference, pixels_of, grad_of):
    inputs = sample_inputs(pixels_of)
    ours = values_and_grads(lambda *t: deformable_sample(*t, backend='pytorch'), inputs, grad_of)
    theirs = values_and_grads(reference, inputs, grad_of)
    torch.testing.assert_close(ours, theirs)
    outside = ((inputs[1] < 0) | (inputs[1] > 1)).any(-1)
    assert outside.any() and not outside.all()  # the cases cover points outside the map


def test_sample_gradcheck():
    inputs = sample_inputs(generic_pixels, B=1, N=2, heads=2, d=2, points=3, seed=1)
    assert torch.autograd.gradcheck(lambda *t: deformable_sample(*t, backend='pytorch'), inputs)


def test_sample_zero_outside_and_exact_on_pixel_centres():
    generator = torch.Generator().manual_seed(2)
    value = torch.randn(1, H, W, 1, 3, generator=generator)
    centre = normalised(torch.tensor([[3., 2.]]))  # pixel (y=2, x=3)
    outside = normalised(torch.tensor([[-1., 2.], [3., H], [W + 5., -7.]]))
    locations = torch.cat((centre, outside)).reshape(1, 1, 1, 4, 2)
    weights = torch.tensor([[[[2., 1., 1., 1.]]]])
    torch.testing.assert_close(deformable_sample(value, locations, weights),
                               2 * value[:, 2, 3].reshape(1, 1, 3))


def randomised(module, seed=0, scale=0.3):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(scale * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return module


def official_port(module, x, hw_shape, *, dilation_rates=(1, ), offset_scale=1.0):
    """STM-Evaluation's MSDeformAttnGrid_softmax.forward (one level, padding on), written out:
    the value padded by sqrt(points) // 2, reference points the unpadded pixel centres over the
    padded size, the base grid stacked (y, x) from a meshgrid and added to (x, y) offsets, the
    offsets normalised by the padded size, mmcv's CPU core as the sampler."""
    B, L, C = x.shape
    (H, W), heads, points = hw_shape, module.num_heads, module.points
    k = math.isqrt(points)
    pad = k // 2
    Hp, Wp = H + 2 * pad, W + 2 * pad
    conv = module.dw_conv
    query = F.conv2d(x.permute(0, 2, 1).reshape(B, C, H, W), conv.weight, conv.bias,
                     padding=(conv.kernel_size[0] - 1) // 2, groups=C)
    query = F.layer_norm(query.permute(0, 2, 3, 1), (C, ), module.dw_norm.weight,
                         module.dw_norm.bias, 1e-5)
    query = F.gelu(query).reshape(B, L, C)
    value = F.linear(x, module.value_proj.weight, module.value_proj.bias).reshape(B, H, W, C)
    value = F.pad(value, [0, 0, pad, pad, pad, pad]).reshape(B, Hp * Wp, heads, C // heads)
    offsets = F.linear(query, module.sampling_offsets.weight, module.sampling_offsets.bias)
    offsets = offsets.reshape(B, L, heads, 1, points, 2)
    weights = F.linear(query, module.attention_weights.weight, module.attention_weights.bias)
    weights = weights.reshape(B, L, heads, points).softmax(-1).reshape(B, L, heads, 1, points)
    ref_y, ref_x = torch.meshgrid(
        torch.linspace(pad + 0.5, Hp - pad - 0.5, H, dtype=x.dtype),
        torch.linspace(pad + 0.5, Wp - pad - 0.5, W, dtype=x.dtype), indexing='ij')
    reference = torch.stack((ref_x.reshape(-1) / Wp, ref_y.reshape(-1) / Hp), -1)[None, :, None]
    parts = []
    for rate in dilation_rates:
        steps = torch.linspace((-k // 2 + 1) * rate, (k // 2) * rate, k, dtype=x.dtype)
        grid_y, grid_x = torch.meshgrid(steps, steps, indexing='ij')
        parts.extend([grid_y, grid_x])
    grid = torch.stack(parts, -1).reshape(-1, len(dilation_rates), 2)
    grid = grid.repeat(1, heads // len(dilation_rates), 1).permute(1, 0, 2)
    grid = grid.reshape(1, 1, heads, 1, points, 2)
    normaliser = torch.tensor([Wp, Hp], dtype=x.dtype)
    locations = reference[:, :, None, :, None] + (grid + offsets) * offset_scale / normaliser
    out = multi_scale_deformable_attn_pytorch(value, torch.tensor([[Hp, Wp]]), locations, weights)
    return F.linear(out, module.output_proj.weight, module.output_proj.bias)


@pytest.mark.parametrize('hw_shape, heads, batch, dilation_rates, offset_scale', [
    ((H, W), 2, 2, (1, ), 1.0), ((1, 1), 3, 3, (1, ), 1.0), ((3, 2), 2, 1, (1, ), 0.5),
    ((4, 6), 4, 2, (1, 2), 1.0)])
def test_module_matches_official_arithmetic(hw_shape, heads, batch, dilation_rates,
                                            offset_scale):
    module = randomised(DCNv3(4 * heads, num_heads=heads, dilation_rates=dilation_rates,
                              offset_scale=offset_scale).double())
    x = torch.randn(batch, math.prod(hw_shape), 4 * heads, dtype=torch.float64)
    out = module(x, hw_shape)
    assert out.shape == x.shape
    torch.testing.assert_close(out, official_port(module, x, hw_shape,
                                                  dilation_rates=dilation_rates,
                                                  offset_scale=offset_scale))


def test_kernel_grid_official_point_order():
    """Point p of the official 3 x 3 grid is at x = v[p // 3], y = v[p % 3]."""
    expected = torch.tensor([[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 0], [0, 1], [1, -1], [1, 0],
                             [1, 1]], dtype=torch.float32)
    torch.testing.assert_close(kernel_grid(9), expected[None])
    torch.testing.assert_close(kernel_grid(9, (1, 2), num_heads=4),
                               torch.stack([expected, 2 * expected] * 2))
    torch.testing.assert_close(kernel_grid(4)[0], torch.tensor([[0., 0.], [0., 1.], [1., 0.],
                                                                [1., 1.]]))


def test_module_parameters_have_the_official_shapes():
    C, heads = 16, 2
    shapes = {name: tuple(t.shape) for name, t in DCNv3(C, num_heads=heads).state_dict().items()}
    assert shapes == {
        'dw_conv.weight': (C, 1, 3, 3), 'dw_conv.bias': (C, ),
        'dw_norm.weight': (C, ), 'dw_norm.bias': (C, ),
        'sampling_offsets.weight': (heads * 9 * 2, C), 'sampling_offsets.bias': (heads * 9 * 2, ),
        'attention_weights.weight': (heads * 9, C), 'attention_weights.bias': (heads * 9, ),
        'value_proj.weight': (C, C), 'value_proj.bias': (C, ),
        'output_proj.weight': (C, C), 'output_proj.bias': (C, )}


def test_official_init_is_a_box_filter_of_the_value():
    """Zero offsets and equal weights: each pixel averages its 3 x 3 neighbourhood of the value
    projection, zeros outside; init_weights restores this after another initialisation."""
    module = DCNv3(6, num_heads=2).double()
    randomised(module)
    module.init_weights()
    assert not module.sampling_offsets.weight.any() and not module.attention_weights.bias.any()
    x = torch.randn(2, H * W, 6, dtype=torch.float64)
    value = module.value_proj(x).transpose(1, 2).reshape(2, 6, H, W)
    box = F.avg_pool2d(value, 3, stride=1, padding=1, count_include_pad=True).flatten(2)
    torch.testing.assert_close(module(x, (H, W)), module.output_proj(box.transpose(1, 2)))


def test_module_gradcheck_and_batch_independence():
    module = randomised(DCNv3(4, num_heads=2).double(), seed=3)
    x = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: module(t, (2, 3)), [x])
    torch.testing.assert_close(module(x, (2, 3))[1:], module(x[1:], (2, 3)))


def test_module_low_precision_samples_in_float32():
    module = randomised(DCNv3(8, num_heads=2))
    x = torch.randn(1, 3 * 9, 8)
    out = module.to(torch.bfloat16)(x.bfloat16(), (3, 9))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), module.float()(x, (3, 9)), atol=0.05, rtol=0.05)


def test_constructor_and_backend_errors():
    with pytest.raises(ValueError, match='square number'):
        DCNv3(8, num_heads=2, points=8)
    with pytest.raises(ValueError, match='multiple of the number of dilation_rates'):
        DCNv3(9, num_heads=3, dilation_rates=(1, 2))
    with pytest.raises(ValueError, match='divisible'):
        DCNv3(10, num_heads=3)
    with pytest.raises(ValueError, match='backend must be one of'):
        DCNv3(8, num_heads=2, backend='cuda')
    inputs = sample_inputs(generic_pixels)
    with pytest.raises(RuntimeError, match="backend='mmcv' needs CUDA tensors"):
        deformable_sample(*inputs, backend='mmcv')
    assert not deformable._use_mmcv(inputs[0], 'auto')  # CPU tensors: grid_sample


def test_mmcv_op_arguments_through_mmcv_reference(monkeypatch):
    """The arguments given to the compiled op, in the layout and types its CUDA kernel requires,
    computed by mmcv's own CPU reference of the same interface (no GPU here)."""
    calls = []

    class CheckedOp:
        @staticmethod
        def apply(value, spatial_shapes, level_start_index, locations, weights, im2col_step):
            B, S, heads, d = value.shape
            assert spatial_shapes.dtype == level_start_index.dtype == torch.long
            assert spatial_shapes.tolist()[0][0] * spatial_shapes.tolist()[0][1] == S
            assert level_start_index.tolist() == [0]
            assert locations.shape[:4] == (B, locations.shape[1], heads, 1)
            assert weights.shape == locations.shape[:-1]
            assert value.dtype == locations.dtype == weights.dtype
            assert all(t.is_contiguous() for t in (value, locations, weights))
            assert B % min(B, im2col_step) == 0
            calls.append(value.dtype)
            return multi_scale_deformable_attn_pytorch(value, spatial_shapes, locations, weights)

    monkeypatch.setattr(deformable, '_mmcv_deform_attn', lambda: CheckedOp)
    monkeypatch.setattr(deformable, '_use_mmcv', lambda value, backend: backend != 'pytorch')
    inputs = sample_inputs(generic_pixels, B=3)
    torch.testing.assert_close(deformable_sample(*inputs),
                               deformable_sample(*inputs, backend='pytorch'))
    half = [t.detach().half() for t in inputs]
    assert deformable_sample(*half).dtype == torch.float16 and calls == [torch.float64,
                                                                         torch.float32]


@pytest.mark.skipif(not torch.cuda.is_available() or deformable._mmcv_deform_attn() is None,
                    reason='needs CUDA and mmcv built with CUDA ops')
def test_cuda_op_matches_pytorch_path():
    module = randomised(DCNv3(32, num_heads=4)).cuda()
    x = torch.randn(3, 5 * 9, 32, device='cuda', requires_grad=True)
    outputs = []
    for backend in ('mmcv', 'pytorch'):
        module.backend = backend
        out = module(x, (5, 9))
        outputs.append((out, *torch.autograd.grad(out.square().sum(), [x, *module.parameters()])))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)


def test_benchmark_tool_runs(capsys):
    from conftest import load_tool
    load_tool('tools/analysis_tools/benchmark_dcnv3.py').main(
        ['--sizes', '3', '5', '--batch', '2', '--dim', '8', '--heads', '2', '--repeat', '1',
         '--warmup', '0', '--device', 'cpu'])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith('| ')][1:]
    assert [row.split('|')[1].strip() for row in rows] == [
        name for name in ('sample: ours, grid_sample', 'sample: mmcv pytorch reference',
                          'DCNv3 layer, grid_sample') for _ in range(2)]
