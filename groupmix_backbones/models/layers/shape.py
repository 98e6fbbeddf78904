"""Shape helpers: tokens <-> maps, padding for any input size, windows, and grids of learned
parameters (position embeddings, relative position tables) that follow the map size."""
import math
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log


def exporting() -> bool:
    """True while ``torch.export`` or ``torch.onnx.export`` trace the model. Size-dependent code then
    branches on no size and caches nothing: it computes its pads, masks and resized grids from the
    symbolic sizes, so that one exported graph serves every input size (a branch taken on the
    example's size would be baked into the graph). Under torch.compile too (:func:`compiling_only`);
    :func:`exporting_only` is for the export alone."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


def compiling_only() -> bool:
    """True while torch.compile traces the model, but not torch.export. Dynamo answers
    ``torch.compiler.is_exporting()`` with True in both (torch 2.11), so :func:`exporting` is True
    there too (which dynamic compilation needs as well: no branch on a size); torch.export's own
    flag tells them apart."""
    return torch.compiler.is_compiling() and not torch.compiler._is_exporting_flag


def exporting_only() -> bool:
    """True while ``torch.export`` or ``torch.onnx.export`` trace the model, but not torch.compile:
    for graphs written for ONNX Runtime's kernels, which a compiled model should not take."""
    return exporting() and not compiling_only()


def to_2tuple(value) -> Tuple[int, int]:
    """``7`` -> ``(7, 7)``; pairs pass through as tuples."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def image_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_image(x: torch.Tensor, hw_shape) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw_shape)


def pad_to_multiple(x: torch.Tensor, multiple, channels_last: bool = False) -> torch.Tensor:
    """Zero-pad the bottom/right of an image, (B, C, H, W) or with ``channels_last`` (B, H, W, C),
    so that H and W are multiples of ``multiple`` (an int or an (h, w) pair)."""
    mh, mw = to_2tuple(multiple)
    H, W = x.shape[1:3] if channels_last else x.shape[2:4]
    # (-H % mh as a ceil: the exporter's symbolic sizes simplify ceils, not negated remainders)
    pad_h, pad_w = (H + mh - 1) // mh * mh - H, (W + mw - 1) // mw * mw - W
    if not exporting() and not pad_h and not pad_w:
        return x
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h) if channels_last else (0, pad_w, 0, pad_h))


def pad_for_strided_conv(x: torch.Tensor, kernel_size, stride, padding) -> torch.Tensor:
    """Zero-pad the bottom/right of (B, C, H, W) so that a conv with these settings outputs
    ``ceil(H / stride) x ceil(W / stride)`` (what a stride-s stem should give for any size).

    While exporting, the pad is ``kernel - 2 * padding - 1`` whatever the size: the same output
    size and values (the rows it adds beyond the least pad are read by no output), no branch on
    the size."""
    if exporting():
        extra = [max(0, k - 2 * p - 1) for k, p in zip(to_2tuple(kernel_size), to_2tuple(padding))]
        return F.pad(x, (0, extra[1], 0, extra[0]))
    extra = []
    for size, k, s, p in zip(x.shape[2:4], to_2tuple(kernel_size), to_2tuple(stride),
                             to_2tuple(padding)):
        extra.append(max(0, s * (-(-size // s) - 1) + k - 2 * p - size))
    return F.pad(x, (0, extra[1], 0, extra[0])) if any(extra) else x


def window_partition(x: torch.Tensor, window_hw) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of the window -> (B * num_windows, wh * ww, C), windows in
    row-major order."""
    B, H, W, C = x.shape
    wh, ww = to_2tuple(window_hw)
    x = x.reshape(B, H // wh, wh, W // ww, ww, C).transpose(2, 3)
    return x.reshape(-1, wh * ww, C)


def roll_map(x: torch.Tensor, shift, dims) -> torch.Tensor:
    """``x.roll((shift, shift), dims)``; a tensor ``shift`` (:func:`window_shift` while exporting,
    ``|shift| <= size``) rolls by gathering the rows and columns at ``(i - shift) mod size``, the
    modulo written as two wraps (ONNX export takes no remainder by a symbolic size)."""
    if not torch.is_tensor(shift):
        if shift and compiling_only():  # see roll_by_slices
            return roll_by_slices(x, shift, dims)
        return x.roll((shift, shift), dims=dims) if shift else x
    for dim in dims:
        size = x.shape[dim]
        index = torch.arange(size, device=x.device) - shift
        index = torch.where(index < 0, index + size, index)
        x = x.index_select(dim, torch.where(index >= size, index - size, index))
    return x


def roll_by_slices(x: torch.Tensor, shift: int, dims) -> torch.Tensor:
    """``x.roll((shift, shift), dims)`` as two slices joined per dim. Under torch.compile, roll
    decomposes into an ``index_select`` at computed indices, and inductor's C++ code for its
    tiled transposes with symbolic sizes can then use an index out of its scope (torch 2.11: a
    "'tmpN' was not declared" compile error for U-Swin); slices index directly."""
    for dim in dims:
        size = x.shape[dim]
        kept = size - shift % size
        x = torch.cat((x.narrow(dim, kept, size - kept), x.narrow(dim, 0, kept)), dim)
    return x


def map_windows(x: torch.Tensor, window_hw, shift=0, multiple=None):
    """(B, H, W, C) -> the windows (B * num_windows, wh * ww, C) of the map zero-padded to
    multiples of ``multiple`` (default: the window) and rolled ``shift`` cells up and left (Swin's
    shifted windows; see :func:`roll_map`), and the padded map's (Hp, Wp)."""
    x = pad_to_multiple(x, window_hw if multiple is None else multiple, channels_last=True)
    padded_hw = tuple(x.shape[1:3])
    return window_partition(roll_map(x, -shift, dims=(1, 2)), window_hw), padded_hw


def window_cells(hw_shape, window_hw, shift: int = 0, *, multiple=None, device=None):
    """(num_windows, wh * ww): the map cell (``row * W + col``; -1: padding) of each token of
    :func:`map_windows`' windows of a ``hw_shape`` map."""
    H, W = hw_shape
    cells = torch.arange(1, H * W + 1, device=device).reshape(1, H, W, 1)  # padding: 0
    return map_windows(cells, window_hw, shift, multiple)[0][..., 0] - 1


def window_reverse(windows: torch.Tensor, window_hw, hw_shape) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * num_windows, wh * ww, C) -> (B, H, W, C)."""
    (wh, ww), (H, W) = to_2tuple(window_hw), tuple(hw_shape)
    C = windows.shape[-1]
    x = windows.reshape(-1, H // wh, W // ww, wh, ww, C).transpose(2, 3)
    return x.reshape(-1, H, W, C)


def resize_pos_embed(pos_embed: torch.Tensor, src_hw, dst_hw, mode: str = 'bicubic',
                     align_corners: bool = False) -> torch.Tensor:
    """Interpolate position embedding tokens (1, src_h*src_w, C) of a src_hw grid to dst_hw; returned
    unchanged when the grids are equal (while exporting, interpolated anyway: a resize to the same
    grid gives the same values, and the exported graph then resizes at any size)."""
    src_hw, dst_hw = tuple(src_hw), tuple(dst_hw)
    if not exporting() and src_hw == dst_hw:
        return pos_embed
    if exporting() and mode == 'bicubic':  # ONNX Runtime's cubic Resize is ~10x slower
        rows, cols = (bicubic_matrix(src, dst, align_corners, pos_embed)
                      for src, dst in zip(src_hw, dst_hw))
        grid = (rows @ pos_embed.reshape(src_hw[0], -1)).reshape(dst_hw[0], src_hw[1], -1)
        return (cols @ grid).reshape(1, dst_hw[0] * dst_hw[1], -1)
    grid = pos_embed.reshape(1, *src_hw, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_hw, mode=mode, align_corners=align_corners)
    return grid.flatten(2).transpose(1, 2)


def bicubic_matrix(src: int, dst, align_corners: bool, like: torch.Tensor) -> torch.Tensor:
    """(dst, src) matrix of ``F.interpolate(mode='bicubic')`` along one axis (A = -0.75, border
    taps clamped, as torch's kernel), in ``like``'s dtype and device: a resize is then two
    matrix products, which the exported graph computes for a symbolic ``dst``."""
    out = torch.arange(dst, device=like.device, dtype=like.dtype)
    if align_corners:
        x = out * ((src - 1) / (dst - 1)) if dst > 1 else out * 0
    else:
        x = (out + 0.5) * (src / dst) - 0.5
    left = x.floor()
    t, a = x - left, -0.75
    near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1  # noqa: E731 (|d| <= 1)
    far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # noqa: E731 (1 < |d| < 2)
    weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=1)  # (dst, 4)
    taps = (left.long()[:, None] + torch.arange(-1, 3, device=like.device)).clamp(0, src - 1)
    cells = torch.arange(src, device=like.device)
    return ((taps[..., None] == cells).to(like.dtype) * weights[..., None]).sum(1)


torch.fx.wrap('resize_pos_embed')  # one node of an FX trace, run eagerly: it branches on sizes


class SavedGrids:
    """Mixin of modules holding parameters laid out on a square grid of the pre-training size
    (position embeddings (1, h*w, C), relative position tables (h*w, heads)).

    :meth:`saved_grids` names them with their grid; the backbone resizes a checkpoint's grids
    of another size to these before loading (:func:`adapt_saved_grids`), so that e.g. 224
    checkpoints load into 384 models and any other pre-training size.
    """

    #: interpolation of the forward for other sizes, and on load
    grid_mode = 'bicubic'
    grid_align_corners = False
    #: resized grids kept per module (sizes, devices, dtypes, parameter versions)
    max_cached_grids = 8

    def resized(self, param: torch.Tensor, grid, hw_shape) -> torch.Tensor:
        """``param`` (1, h*w, C) of ``grid`` resized to a ``hw_shape`` map (itself when equal).
        While no gradient is recorded for it, a resize is computed once per size, device, dtype
        and parameter version (an optimizer step or a load makes a new one) and cached."""
        hw_shape = tuple(hw_shape)
        resize = (lambda: resize_pos_embed(param, grid, hw_shape, mode=self.grid_mode,
                                           align_corners=self.grid_align_corners))
        if exporting() or isinstance(param, torch.fx.Proxy):  # resized in the graph (FX: one
            return resize()  # node, run eagerly)
        if tuple(grid) == hw_shape:
            return param
        if (torch.is_grad_enabled() and param.requires_grad) or torch.compiler.is_compiling() \
                or param.is_inference():  # an inference tensor has no version to key on
            return resize()
        key = (param.data_ptr(), param._version, param.device, param.dtype, hw_shape)
        cache = self.__dict__.setdefault('_resized_grids', {})
        if key not in cache:
            while len(cache) >= self.max_cached_grids:
                cache.pop(next(iter(cache)))
            with torch.inference_mode(False), torch.no_grad():  # usable by autograd later
                cache[key] = resize()
        return cache[key]

    def saved_grids(self) -> Iterator[Tuple[str, torch.Tensor, Tuple[int, ...]]]:
        """Yield ``(parameter name, parameter, grid (h, w))``."""
        raise NotImplementedError

    def resize_saved(self, saved: torch.Tensor, param: torch.Tensor,
                     grid) -> Optional[Tuple[torch.Tensor, str]]:
        """``saved`` (a checkpoint's tensor of another size) resized to ``param``'s ``grid`` and
        what was done (``'from a 14x14 grid to 24x24 (bicubic)'``), or None when it is not a square
        grid of the same channels (left to the shape check)."""
        if saved.dim() != param.dim() or saved.dim() not in (2, 3) or \
                saved.shape[-1] != param.shape[-1]:
            return None
        tokens = saved if saved.dim() == 3 else saved[None]
        side = math.isqrt(tokens.shape[1])
        if side * side != tokens.shape[1]:
            return None
        resized = resize_pos_embed(tokens.float(), (side, side), grid, mode=self.grid_mode,
                                   align_corners=self.grid_align_corners)
        resized = (resized if saved.dim() == 3 else resized[0]).to(saved.dtype)
        return resized, f'from a {side}x{side} grid to {grid[0]}x{grid[1]} ({self.grid_mode})'


def adapt_saved_grids(module: torch.nn.Module, state_dict: dict, prefix: str = '') -> None:
    """Resize, in ``state_dict``, every saved grid of the :class:`SavedGrids` modules below
    ``module`` whose size differs from the module's (:meth:`SavedGrids.resize_saved`); each resize
    is logged with the key and both sizes. Tensors it cannot resize are left to the shape check."""
    for name, sub in module.named_modules(prefix=prefix.rstrip('.')):
        if not isinstance(sub, SavedGrids):
            continue
        for param_name, param, grid in sub.saved_grids():
            key = f'{name}.{param_name}' if name else param_name
            saved = state_dict.get(key)
            if not torch.is_tensor(saved) or saved.shape == param.shape:
                continue
            done = sub.resize_saved(saved, param, grid)
            if done is not None:
                state_dict[key] = done[0]
                print_log(f'Resized {key} {done[1]}', logger='current')
