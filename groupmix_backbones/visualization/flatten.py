"""Attention maps of the FLatten hosts, as the official visualizer draws them: for a query, the
equivalent attention of each block, i.e. the normalised focused linear attention (as the module
records it) plus the depthwise-convolution term (``dwc``, and CSWin's LePE) in ``L`` stages, the
softmax attention of the host (Swin windows, PVT spatial reduction, CSWin stripes with LePE) in
``S`` stages.

Unlike the official (head 0, the first channel's kernel), heads are averaged and conv kernels
averaged over channels: the map is the weights of the channel-averaged output.
"""
from ..models.flatten import FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin
from ..models.flatten.common import FocusedLinearAttention
from ..models.flatten.cswin import CSWinLinearAttention, CSWinStripeAttention
from .attention import block_attention_maps, channel_mean_kernel, local_term, register_local_term
from .core import register_visualizer, titled_blocks

KINDS = {'L': 'linear', 'S': 'softmax'}


@register_local_term(FocusedLinearAttention)
def dwc_term(module: FocusedLinearAttention, row, cell):
    """The rank-restoring depthwise conv of v, its kernel shared by the heads."""
    return local_term(channel_mean_kernel(module.dwc), cell, tuple(row.seen.shape))


@register_local_term(CSWinLinearAttention)
def dwc_and_lepe_term(module: CSWinLinearAttention, row, cell):
    """``dwc`` plus LePE (per head's channels) on the whole map."""
    lepe = channel_mean_kernel(module.lepe, module.num_heads)
    return dwc_term(module, row, cell) + local_term(lepe, cell, tuple(row.seen.shape))


@register_local_term(CSWinStripeAttention)
def stripe_lepe_term(module: CSWinStripeAttention, row, cell):
    """LePE inside the query's stripe (the keys it sees)."""
    return local_term(channel_mean_kernel(module.lepe, module.num_heads), cell,
                      tuple(row.seen.shape), region=row.region())


@register_visualizer(*(host.__name__ for host in (FLattenPVT, FLattenPVTv2, FLattenSwin,
                                                  FLattenCSWin)), uses_query=True)
def flatten_attention(backbone, image, *, query=None):
    """One map per block, titled ``stage<i>.block<j> linear|softmax`` (from 1)."""
    blocks = titled_blocks(backbone, lambda stage: KINDS[backbone.attn_types[stage]])
    return block_attention_maps(backbone, image, query, blocks)
