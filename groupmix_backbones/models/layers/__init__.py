"""The layers family files build from: those several families share, and layers of one family that
are token mixers in their own right (the unified family's halo and deformable attention). Family
files import from here, never from each other."""
from .attention import (MASK_VALUE, AttentionWeights, ShiftedWindowAttention,
                        SpatialReductionAttention, check_heads, key_mask, map_probe_cells,
                        real_map, recording_attention, relative_position_index,
                        shifted_window_mask, size_cache, softmax_attention, window_probe_cells,
                        window_shift)
from .block import PreNormBlock
from .deformable import DCNv3, deformable_sample, kernel_grid
from .drop import drop_path, drop_path_schedule
from .embed import ConvPatchEmbed, GridPositionEmbedding, PatchMerging
from .fuse import Fusable, fold_bn, fuse_modules
from .groupmix import (ConvRelPosEnc, GroupAggregator, GroupMixAttention, LocalAggregator,
                       SepConv2d, crpe_head_splits)
from .init import fan_out_normal_
from .halo import HaloAttention, halo_key_mask, halo_relative_index, make_divisible
from .linear import Linear
from .linear_attention import FocusedLinearAttention, ProjectedLinearAttention
from .mlp import Mlp
from .norm import build_norm
from .shape import (SavedGrids, adapt_saved_grids, exporting, exporting_only, image_to_tokens,
                    map_windows, pad_for_strided_conv, pad_to_multiple, resize_pos_embed, roll_map,
                    to_2tuple, tokens_to_image, window_cells, window_partition, window_reverse)

__all__ = [
    'MASK_VALUE', 'AttentionWeights', 'recording_attention', 'map_probe_cells',
    'window_probe_cells', 'PreNormBlock',
    'ShiftedWindowAttention', 'SpatialReductionAttention', 'check_heads', 'key_mask', 'real_map',
    'relative_position_index', 'shifted_window_mask', 'softmax_attention',
    'size_cache', 'window_shift', 'exporting', 'exporting_only', 'roll_map',
    'DCNv3', 'deformable_sample', 'kernel_grid', 'drop_path', 'drop_path_schedule',
    'ConvPatchEmbed', 'GridPositionEmbedding', 'PatchMerging', 'Fusable', 'fold_bn',
    'fuse_modules', 'fan_out_normal_', 'HaloAttention',
    'halo_key_mask', 'halo_relative_index', 'make_divisible', 'Linear', 'Mlp',
    'build_norm', 'SavedGrids',
    'adapt_saved_grids', 'image_to_tokens', 'pad_for_strided_conv', 'pad_to_multiple',
    'resize_pos_embed', 'to_2tuple', 'tokens_to_image', 'map_windows', 'window_cells',
    'window_partition', 'window_reverse', 'ConvRelPosEnc', 'GroupAggregator', 'GroupMixAttention',
    'LocalAggregator', 'SepConv2d', 'crpe_head_splits', 'FocusedLinearAttention',
    'ProjectedLinearAttention'
]
