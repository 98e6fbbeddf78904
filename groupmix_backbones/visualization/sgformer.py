"""SG-Former's significance maps: for each hybrid-scale block, the map the next block sorts its
tokens by (the attention each token receives, averaged over heads and queries, global plus
window part), read by forward hooks on the blocks' ``attn.significance`` submodules."""
from ..models.sgformer import SGFormer, SignificanceMap
from .core import register_visualizer, run_with_hooks, titled_blocks


@register_visualizer(SGFormer.__name__)
def sgformer_significance(backbone, image, *, query=None):
    """One map per hybrid-scale block, titled ``stage<i>.block<j> significance`` (from 1), on the
    stage's map of the first image; no query."""
    maps = {title: block.attn.significance
            for title, block in titled_blocks(backbone, lambda stage: 'significance').items()
            if isinstance(getattr(block.attn, 'significance', None), SignificanceMap)}
    calls = run_with_hooks(lambda: backbone(image), maps)
    return [(title, calls[title][2][0]) for title in maps if title in calls]
