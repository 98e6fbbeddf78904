"""HaloNet's blocked local softmax attention with query-related relative position logits, as the
unified token-mixer models (STM-Evaluation, ``pos_embed_type='query_related'``) use it."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import AttentionWeights, check_heads, key_mask, size_cache, softmax_attention
from .shape import SavedGrids, exporting, pad_to_multiple, window_cells
from .linear import Linear


def make_divisible(value: float, divisor: int = 8, round_limit: float = .9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), one
    multiple up when rounding would lose more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


@size_cache
def halo_relative_index(block_size: int, win_size: int, device: torch.device) -> torch.Tensor:
    """(block, win) index into a (2*win - 1)-row relative table of a query at block position i
    and a key at window position j along one axis: ``j - i + win - 1``."""
    return (torch.arange(win_size, device=device)[None, :] -
            torch.arange(block_size, device=device)[:, None] + win_size - 1)


def halo_windows(x: torch.Tensor, block_size: int, win_size: int) -> torch.Tensor:
    """``x.unfold(1, win, block).unfold(2, win, block)`` of a (B, H, W, C) map: (B, nh, nw, C, win,
    win), the window of each block. While exporting, the windows are gathered by row and column
    indices computed from the map size (ONNX has no unfold with symbolic sizes)."""
    if not exporting():
        return x.unfold(1, win_size, block_size).unfold(2, win_size, block_size)
    for dim in (1, 3):  # (..., size, ...) -> (..., num_blocks, win, ...): rows, then columns
        starts = torch.arange(0, x.shape[dim] - win_size + 1, block_size, device=x.device)
        index = (starts[:, None] + torch.arange(win_size, device=x.device)).flatten()
        x = x.index_select(dim, index).unflatten(dim, (-1, win_size))
    return x.permute(0, 1, 3, 5, 2, 4)  # (B, nh, win, nw, win, C) -> (B, nh, nw, C, win, win)


@size_cache
def halo_key_mask(hw_shape, block_size: int, halo_size: int, device: torch.device,
                  dtype: torch.dtype):
    """Additive masks of the keys of each block's halo window that lie outside the real
    ``hw_shape`` map (halo padding and padding to block multiples), one per axis: a key is real
    when its row and its column are. (num block rows, win) and (num block columns, win)."""
    win = block_size + 2 * halo_size
    masks = []
    for size in hw_shape:  # (num_blocks along the axis, win): is the key's row/column real?
        pos = (torch.arange(0, size, block_size, device=device)[:, None] - halo_size +
               torch.arange(win, device=device))
        masks.append(key_mask((pos >= 0) & (pos < size), dtype))
    return tuple(masks)


def halo_probe_cells(hw_shape, block_size: int, halo_size: int, device=None) -> dict:
    """The cell keywords of :class:`AttentionWeights` for :class:`HaloAttention`: the queries of
    each block (blocks, block*block) and the keys of its halo window (blocks, win*win), -1
    outside the real ``hw_shape`` map."""
    (H, W), win = hw_shape, block_size + 2 * halo_size
    cells = torch.arange(1, H * W + 1, device=device).reshape(1, H, W, 1)  # outside: 0
    cells = F.pad(pad_to_multiple(cells, block_size, channels_last=True),
                  (0, 0) + (halo_size, ) * 4)
    keys = halo_windows(cells, block_size, win).reshape(-1, win * win) - 1
    return dict(queries=window_cells(hw_shape, block_size, device=device), keys=keys,
                hw_shape=(H, W))


class HaloAttention(SavedGrids, nn.Module):
    """HaloNet attention: each ``block_size`` block of queries attends to the ``block_size + 2 *
    halo_size`` window around it, with relative logits ``q . height_rel[dy] + q . width_rel[dx]``
    (one pair of tables shared by the heads) added to ``q k^T * scale``.

    Tokens (B, N, C) of a ``hw_shape`` map of any size: the map is padded to block multiples and
    every key outside the real map is masked, so maps with sides multiple of the block compute the
    official layer exactly, and other maps attend to their real pixels only. ``kv`` is a Linear
    whose output channels are laid out (heads, k + v), as the official 1x1 conv's. Relative tables
    saved for another window are resized on load (:class:`SavedGrids`). Probe ``attn_weights``:
    (B, blocks, heads, block*block, win*win) while recording (:func:`halo_probe_cells`).
    """

    def __init__(self, dim: int, *, num_heads: int, block_size: int = 7, halo_size: int = 3,
                 qkv_bias: bool = False, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.block_size = block_size
        self.halo_size = halo_size
        self.win_size = block_size + 2 * halo_size
        self.dim_head_qk = make_divisible(dim) // num_heads
        self.dim_head_v = dim // num_heads
        self.attn_drop = attn_drop
        self.q = Linear(dim, num_heads * self.dim_head_qk, bias=qkv_bias)
        self.kv = Linear(dim, num_heads * (self.dim_head_qk + self.dim_head_v), bias=qkv_bias)
        table_shape, scale = (2 * self.win_size - 1, self.dim_head_qk), self.dim_head_qk ** -0.5
        self.height_rel = nn.Parameter(torch.randn(table_shape) * scale)
        self.width_rel = nn.Parameter(torch.randn(table_shape) * scale)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.attn_weights = AttentionWeights()

    def saved_grids(self):
        for name in ('height_rel', 'width_rel'):
            param = getattr(self, name)
            yield name, param, (len(param), )

    def resize_saved(self, saved, param, grid):
        """Relative tables saved for another window (block + 2 * halo), resized linearly with
        aligned corners as the official loader does; tables of other channels: None."""
        if saved.dim() != 2 or saved.shape[1] != param.shape[1] or len(saved) < 2:
            return None
        resized = F.interpolate(saved.float().T[None], size=grid[0], mode='linear',
                                align_corners=True)[0].T
        return (resized.to(saved.dtype).contiguous(),
                f'from {len(saved)} to {grid[0]} relative positions (linear)')

    def relative_logits(self, q: torch.Tensor, key_masks) -> torch.Tensor:
        """Query-related relative logits, unscaled, of q (B, nh, nw, heads, block*block, dqk) for
        every key of each block's window, plus the per-axis ``key_masks`` of
        :func:`halo_key_mask`: (B, nh, nw, heads, block*block, win*win). Each table is multiplied
        by every query once; the offsets a query needs are then gathered."""
        b, win = self.block_size, self.win_size
        index = halo_relative_index(b, win, q.device)  # (query position, key position)
        shape = (*q.shape[:-2], b, b, win)
        rows = (q @ self.height_rel.T).unflatten(-2, (b, b)).gather(
            -1, index[:, None].expand(shape))  # by the query's row: (..., row, col, key row)
        cols = (q @ self.width_rel.T).unflatten(-2, (b, b)).gather(
            -1, index[None].expand(shape))  # by the query's column: (..., key column)
        row_mask, col_mask = key_masks  # (nh, win), (nw, win)
        rows = rows + row_mask[:, None, None, None, None, :]
        cols = cols + col_mask[None, :, None, None, None, :]
        return (rows[..., :, None] + cols[..., None, :]).flatten(-4, -3).flatten(-2)

    def forward(self, x: torch.Tensor, hw_shape) -> torch.Tensor:
        B, N, C = x.shape
        (H, W), b, halo, win = hw_shape, self.block_size, self.halo_size, self.win_size
        heads, dqk, dv = self.num_heads, self.dim_head_qk, self.dim_head_v
        x = pad_to_multiple(x.reshape(B, H, W, C), b, channels_last=True)
        Hp, Wp = x.shape[1:3]
        nh, nw = Hp // b, Wp // b
        q = self.q(x).reshape(B, nh, b, nw, b, heads, dqk).permute(0, 1, 3, 5, 2, 4, 6)
        q = q.reshape(B, nh, nw, heads, b * b, dqk)
        kv = F.pad(self.kv(x), (0, 0, halo, halo, halo, halo))
        kv = halo_windows(kv, b, win)  # (B, nh, nw, heads * (dqk + dv), win, win)
        # channels last (SDPA's fused kernels need unit stride there): (B, blocks, heads, win*win, d)
        kv = kv.permute(0, 1, 2, 4, 5, 3).reshape(B, nh * nw, win * win, heads, dqk + dv)
        k, v = kv.transpose(2, 3).split([dqk, dv], dim=-1)
        bias = self.relative_logits(q, halo_key_mask((H, W), b, halo, x.device, q.dtype))
        record = self.attn_weights.recorder(lambda: halo_probe_cells((H, W), b, halo, x.device))
        out = softmax_attention(q.flatten(1, 2), k, v, mask=bias.flatten(1, 2), record=record,
                                dropout_p=self.attn_drop if self.training else 0.)
        out = out.reshape(B, nh, nw, heads, b, b, dv).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(B, Hp, Wp, heads * dv)[:, :H, :W]
        return self.proj_drop(self.proj(out.reshape(B, N, heads * dv)))
