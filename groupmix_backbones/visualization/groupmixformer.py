"""GroupMixFormer's group-mix attention maps: for a query, the N x N weights of each block's
efficient attention, ``scale q^T softmax_N(k)`` (as
:class:`~..models.groupmixformer.GroupMixAttention` records them), with q and k taken after the
group aggregators, so that a token's weights relate aggregated token groups too; the heads, which
span the four aggregated channel groups, are averaged. The convolutional relative position term
(``q * dwconv(v)``, whose weights depend on each channel of the query) and the channel group that
bypasses attention (the local aggregator) are not drawn.
"""
from ..models.groupmixformer import GroupMixFormer
from .attention import block_attention_maps
from .core import register_visualizer, titled_blocks


@register_visualizer(GroupMixFormer.__name__, uses_query=True)
def groupmixformer_attention(backbone, image, *, query=None):
    """One map per block, titled ``stage<i>.block<j> group-mix`` (from 1)."""
    blocks = titled_blocks(backbone, lambda stage: 'group-mix')
    return block_attention_maps(backbone, image, query, blocks)
