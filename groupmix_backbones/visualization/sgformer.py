"""SG-Former's significance maps: for each hybrid-scale block, the map the next block sorts its
tokens by (the attention each token receives, averaged over heads and queries, global plus
window part), read by forward hooks on the blocks' ``attn.significance`` submodules."""
from ..models.sgformer import SGFormer, SignificanceMap
from .core import register_visualizer


@register_visualizer(SGFormer.__name__)
def sgformer_significance(backbone, image, *, query=None):
    """One map per hybrid-scale block, titled ``stage<i>.block<j> significance`` (from 1), on the
    stage's map of the first image; no query."""
    maps, handles = {}, []
    try:
        for i, stage in enumerate(backbone.stages):
            for j, block in enumerate(stage.blocks):
                module = getattr(block.attn, 'significance', None)
                if isinstance(module, SignificanceMap):
                    title = f'stage{i + 1}.block{j + 1} significance'
                    handles.append(module.register_forward_hook(
                        lambda module, args, out, title=title: maps.__setitem__(title, out[0])))
        backbone(image)
    finally:
        for handle in handles:
            handle.remove()
    return list(maps.items())
