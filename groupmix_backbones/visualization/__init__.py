"""What the methods do on an image: attention and significance maps of the backbones, drawn over
the image (``tools/visualization/visualize_backbone.py``). A family adds a visualizer with
:func:`register_visualizer` in a module imported here."""
from . import flatten  # noqa: F401  (registers the FLatten hosts)
from . import groupmixformer  # noqa: F401  (registers GroupMixFormer)
from . import sgformer  # noqa: F401  (registers SG-Former)
from .core import (VISUALIZERS, UnknownBackboneError, draw_maps, get_visualizer, marked_query,
                   register_visualizer, run_with_hooks, select_maps, visualize)

__all__ = ['VISUALIZERS', 'UnknownBackboneError', 'draw_maps', 'get_visualizer', 'marked_query',
           'register_visualizer', 'run_with_hooks', 'select_maps', 'visualize']
