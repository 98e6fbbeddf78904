"""DCNv3 as a token mixer (the unified-architecture InternImage of STM-Evaluation): each head takes
a softmax-weighted sum of its channel group bilinearly sampled at learned points around every
pixel, through mmcv's compiled multi-scale deformable attention op on CUDA and ``grid_sample``
elsewhere."""
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import check_heads
from .shape import compiling_only, image_to_tokens, tokens_to_image
from .linear import Linear

BACKENDS = ('auto', 'pytorch', 'mmcv')


@functools.lru_cache(maxsize=None)
def _mmcv_deform_attn():
    """mmcv's compiled ``MultiScaleDeformableAttnFunction`` when mmcv was built with CUDA ops, else
    None (mmcv has no CPU kernel of this op)."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction, ext_module
    except (ImportError, AssertionError):  # no mmcv ops, or an _ext without this op
        return None
    if get_compiling_cuda_version() == 'not available' or not hasattr(
            ext_module, 'ms_deform_attn_forward'):
        return None
    return MultiScaleDeformableAttnFunction


def _use_mmcv(value: torch.Tensor, backend: str) -> bool:
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}.')
    if backend == 'pytorch':
        return False
    usable = value.is_cuda and _mmcv_deform_attn() is not None
    if backend == 'mmcv' and not usable:
        raise RuntimeError(
            "backend='mmcv' needs CUDA tensors and mmcv built with CUDA ops (mmcv.ops."
            f"get_compiling_cuda_version() is not 'not available'); got a {value.device} tensor. "
            "Use backend='auto' or 'pytorch' to sample with grid_sample.")
    return usable


def deformable_sample(value: torch.Tensor, locations: torch.Tensor, weights: torch.Tensor, *,
                      backend: str = 'auto') -> torch.Tensor:
    """Weighted sum over points of bilinear samples of each head's channels, zero outside the map.

    Args:
        value: (B, H, W, heads, d) map, one channel group per head.
        locations: (B, N, heads, points, 2) sampling points as (x, y) normalised to the map's
            edges: (0, 0) is the top-left corner of the top-left pixel, (1, 1) the bottom-right
            corner of the bottom-right pixel (pixel centres at (i + 0.5) / size).
        weights: (B, N, heads, points) weight of each point.
        backend: ``'auto'`` takes mmcv's compiled op for CUDA tensors when mmcv has it and
            ``grid_sample`` otherwise; ``'pytorch'`` always ``grid_sample``; ``'mmcv'`` the
            compiled op or an error. Both give the same result within float tolerance.

    Returns:
        (B, N, heads * d).
    """
    B, H, W, heads, d = value.shape
    out_dtype = value.dtype
    N, points = locations.shape[1], locations.shape[3]
    # sampled in float32 at least: half-precision pixel positions are too coarse on large maps,
    # and the compiled op has no half kernel (the official runs it under autocast in float32)
    dtype = torch.promote_types(value.dtype, torch.float32)
    value, locations, weights = value.to(dtype), locations.to(dtype), weights.to(dtype)
    if _use_mmcv(value, backend):
        out = _mmcv_deform_attn().apply(
            value.reshape(B, H * W, heads, d).contiguous(),
            torch.tensor([[H, W]], dtype=torch.long, device=value.device),
            torch.zeros(1, dtype=torch.long, device=value.device),
            locations[:, :, :, None].contiguous(), weights[:, :, :, None].contiguous(),
            B)  # im2col step: the whole batch at once
    else:  # heads folded into the batch axis: one grid_sample for all heads and points
        samples = bilinear_sample(  # (B*heads, d, N, points)
            value.permute(0, 3, 4, 1, 2).reshape(B * heads, d, H, W),
            (2 * locations - 1).transpose(1, 2).reshape(B * heads, N, points, 2))
        out = (samples * weights.transpose(1, 2).reshape(B * heads, 1, N, points)).sum(-1)
        out = out.reshape(B, heads * d, N).transpose(1, 2)
    return out.to(out_dtype)


def bilinear_sample(value: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample`` of ``value`` (B, C, H, W) at ``grid`` (B, N, P, 2) in [-1, 1], bilinear,
    zeros outside, ``align_corners=False``. Compiled on CPU, as one opaque op
    (:func:`grid_sample_op`)."""
    if compiling_only() and not value.is_cuda:
        return grid_sample_op(value, grid)
    return F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


@torch.library.custom_op('groupmix_backbones::grid_sample', mutates_args=())
def grid_sample_op(value: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """:func:`bilinear_sample` as an op that torch.compile calls instead of decomposing: on CPU,
    inductor's decomposition of ``grid_sample`` into gathers made U-InternImage-micro's backbone
    5.6x slower than eager (1x3x512x512; with the op kept whole, compiled is 1.2x eager:
    docs/deployment.md). Not used on CUDA (not measured there)."""
    return F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


@grid_sample_op.register_fake
def _(value, grid):
    return value.new_empty(value.shape[0], value.shape[1], grid.shape[1], grid.shape[2])


def _save_inputs(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _grid_sample_backward(ctx, grad):
    value, grid = ctx.saved_tensors
    # aten's own backward of the op (interpolation 0: bilinear, padding 0: zeros)
    return torch.ops.aten.grid_sampler_2d_backward(grad, value, grid, 0, 0, False,
                                                   list(ctx.needs_input_grad))


grid_sample_op.register_autograd(_grid_sample_backward, setup_context=_save_inputs)


def kernel_grid(points: int, dilation_rates=(1, ), num_heads: int = 1) -> torch.Tensor:
    """(heads, points, 2) offsets in pixels, as (x, y), of the base points around each pixel: a
    k x k grid (k = sqrt(points)) of spacing ``dilation_rates[h % len(dilation_rates)]``.

    The order is the official one, which the trained sampling_offsets and attention_weights follow:
    its meshgrid is named (y, x) but added to (x, y) locations, so x varies along the slow axis
    (point p is at x = v[p // k], y = v[p % k], v = [-k // 2 + 1, ..., k // 2])."""
    k = math.isqrt(points)
    if k * k != points:
        raise ValueError(f'points must be a square number (a k x k grid), got {points}.')
    if num_heads % len(dilation_rates):
        raise ValueError(f'num_heads {num_heads} must be a multiple of the number of '
                         f'dilation_rates {tuple(dilation_rates)}.')
    steps = torch.arange(k, dtype=torch.float32) + (-k // 2 + 1)
    slow, fast = torch.meshgrid(steps, steps, indexing='ij')
    grid = torch.stack((slow, fast), -1).reshape(points, 2)  # (x, y) = (slow, fast)
    rates = torch.tensor(dilation_rates, dtype=torch.float32).repeat(num_heads //
                                                                     len(dilation_rates))
    return rates[:, None, None] * grid


class DCNv3(nn.Module):
    """DCNv3 token mixer of the unified InternImage (STM-Evaluation's ``MSDeformAttnGrid_softmax``
    with one level): the query is a depthwise k x k conv of the input, then LayerNorm and GELU;
    per head, ``points`` learned offsets from a base grid around each pixel and their softmax
    weights; the value projection of the input sampled there (zero outside the map), weighted,
    summed and projected. Tokens (B, N, C) of a ``hw_shape`` map, any size.

    Parameters have the official shapes; official ``attn.dw_conv.0.*`` is ``dw_conv.*``,
    ``attn.dw_conv.1.norm.*`` is ``dw_norm.*``, the other names are the same.

    :meth:`init_weights`, run at construction, is the official mixer's own initialisation (zero
    offsets and weights: the base grid, averaged; xavier projections). The official unified
    backbone then re-initialises every Linear and Conv2d, these included, with a truncated normal
    (std .02, zero bias); a backbone that wants the mixer's own must call :meth:`init_weights`
    after its other initialisation.
    """

    def __init__(self, dim: int, *, num_heads: int, kernel_size: int = 3, points: int = 9,
                 dilation_rates=(1, ), offset_scale: float = 1.0, backend: str = 'auto'):
        super().__init__()
        check_heads(dim, num_heads)
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}.')
        self.num_heads = num_heads
        self.points = points
        self.offset_scale = offset_scale
        self.backend = backend
        self.register_buffer('base_grid', kernel_grid(points, dilation_rates, num_heads),
                             persistent=False)
        self.dw_conv = nn.Conv2d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim)
        self.dw_norm = nn.LayerNorm(dim, eps=1e-5)
        self.sampling_offsets = Linear(dim, num_heads * points * 2)
        self.attention_weights = Linear(dim, num_heads * points)
        self.value_proj = Linear(dim, dim)
        self.output_proj = Linear(dim, dim)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        """The official mixer's initialisation of its linear layers (conv and norm: PyTorch's)."""
        for layer in (self.sampling_offsets, self.attention_weights):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def sampling_locations(self, offsets: torch.Tensor, hw_shape) -> torch.Tensor:
        """(B, N, heads, points, 2) pixel offsets -> normalised (x, y) sampling locations: pixel
        centre + (base grid + offset) * offset_scale, over the map's width and height."""
        (H, W), device = hw_shape, offsets.device
        offsets = offsets.to(torch.promote_types(offsets.dtype, torch.float32))  # pixel precision
        ys, xs = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device),
                                indexing='ij')
        centres = torch.stack((xs, ys), -1).reshape(H * W, 1, 1, 2).to(offsets.dtype) + 0.5
        pixels = centres + (self.base_grid.to(offsets.dtype) + offsets) * self.offset_scale
        return pixels / torch.tensor([W, H], device=device, dtype=offsets.dtype)

    def forward(self, x: torch.Tensor, hw_shape) -> torch.Tensor:
        B, N, C = x.shape
        (H, W), heads = hw_shape, self.num_heads
        query = F.gelu(self.dw_norm(image_to_tokens(self.dw_conv(tokens_to_image(x, hw_shape)))))
        value = self.value_proj(x).reshape(B, H, W, heads, C // heads)
        offsets = self.sampling_offsets(query).reshape(B, N, heads, self.points, 2)
        weights = self.attention_weights(query).reshape(B, N, heads, self.points).softmax(-1)
        out = deformable_sample(value, self.sampling_locations(offsets, hw_shape), weights,
                                backend=self.backend)
        return self.output_proj(out)
