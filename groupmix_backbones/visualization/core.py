"""What every visualizer shares: the registry, running a model with forward hooks, and drawing
maps over the image (coloured overlays, the query mark, one PNG per map or one sheet).

A visualizer is a function ``(backbone, image, *, query=None) -> [(title, map), ...]``: ``image``
is the normalised input (1, 3, H, W), ``query`` a point (y, x) as fractions of the image height
and width (None: the visualizer's default), and each map a 2-D tensor on any grid covering the
image (the drawing resizes it to the image).
"""
import fnmatch
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw

Maps = List[Tuple[str, torch.Tensor]]
Query = Tuple[float, float]

VISUALIZERS: Dict[str, Callable[..., Maps]] = {}  # backbone class name -> visualizer
QUERY_VISUALIZERS = set()  # backbone class names whose maps depend on the query
DEFAULT_QUERY: Query = (0.5, 0.5)  # the image centre
MARK_COLOR = (255, 0, 255)  # the query mark; no colour of the colormap
COLORMAP = 'jet'
ALPHA = 0.5  # weight of the map's colour over the image
TITLE_HEIGHT = 16  # pixels above each panel of a sheet
SHEET_COLUMNS = 4


class UnknownBackboneError(KeyError):
    """A backbone type without a visualizer."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


def register_visualizer(*backbone_type_names: str, uses_query: bool = False):
    """Register the decorated visualizer for the backbones of these class names; ``uses_query``:
    its maps are of a query point (the drawing marks it)."""
    def register(function):
        for name in backbone_type_names:
            VISUALIZERS[name] = function
            if uses_query:
                QUERY_VISUALIZERS.add(name)
        return function
    return register


def get_visualizer(backbone_type: str) -> Callable[..., Maps]:
    """The visualizer of a backbone class name; :class:`UnknownBackboneError` lists the names that
    have one."""
    if backbone_type not in VISUALIZERS:
        raise UnknownBackboneError(
            f'No visualizer for backbone type {backbone_type!r}. Backbones with one: '
            f'{", ".join(sorted(VISUALIZERS))}.')
    return VISUALIZERS[backbone_type]


def marked_query(backbone_type: str, query: Optional[Query]) -> Optional[Query]:
    """The point the maps of ``backbone_type`` are of (``query`` or the default), None when they
    depend on no query."""
    return (query or DEFAULT_QUERY) if backbone_type in QUERY_VISUALIZERS else None


def visualize(backbone: nn.Module, image: torch.Tensor, *, query: Optional[Query] = None) -> Maps:
    """The maps of ``backbone`` (in eval mode, no gradients) on the normalised ``image``."""
    visualizer = get_visualizer(type(backbone).__name__)
    backbone.eval()
    with torch.no_grad():
        return visualizer(backbone, image, query=query)


def run_with_hooks(run: Callable[[], object],
                   modules: Dict[object, nn.Module]) -> Dict[object, Tuple[tuple, dict, object]]:
    """Call ``run()`` (e.g. ``lambda: backbone(image)``) and return, per key of ``modules``, the
    positional and keyword inputs and the output of that module's (last) call; a module not
    called is left out. The one hook loop of the visualizers."""
    calls, handles = {}, []

    def hook(name):
        def save(module, args, kwargs, output):
            calls[name] = (args, kwargs, output)
        return save

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook(name), with_kwargs=True))
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls


def titled_blocks(backbone: nn.Module, kind: Callable[[int], str]) -> Dict[str, nn.Module]:
    """Every block of the backbone's stages, titled ``stage<i>.block<j> <kind(stage index)>``
    (from 1)."""
    return {f'stage{i + 1}.block{j + 1} {kind(i)}': block
            for i, stage in enumerate(backbone.stages) for j, block in enumerate(stage.blocks)}


def query_cell(query: Query, hw_shape) -> Tuple[int, int]:
    """The cell (row, column) of a ``hw_shape`` grid over the image that holds ``query``."""
    return tuple(min(int(fraction * size), size - 1) for fraction, size in zip(query, hw_shape))


def query_pixel(query: Query, image_hw) -> Tuple[int, int]:
    """The pixel (row, column) of ``query`` in an image of ``image_hw``."""
    return query_cell(query, image_hw)


def select_maps(maps: Maps, patterns: Optional[Sequence[str]]) -> Maps:
    """The maps whose titles match any of the shell-style ``patterns`` (all when None); a
    ValueError lists the titles when none matches."""
    if not patterns:
        return maps
    chosen = [(title, m) for title, m in maps
              if any(fnmatch.fnmatchcase(title, p) or title.split()[0] == p for p in patterns)]
    if not chosen:
        raise ValueError(f'No map matches --layers {" ".join(patterns)}. Maps of this backbone: '
                         f'{", ".join(title for title, _ in maps)}.')
    return chosen


def colour_map(values: torch.Tensor, image_hw) -> np.ndarray:
    """A 2-D map resized (nearest) to ``image_hw``, scaled to [0, 1] by its range and coloured:
    (H, W, 3) uint8."""
    values = F.interpolate(values.detach().float().cpu()[None, None], size=tuple(image_hw),
                           mode='nearest')[0, 0]
    low, high = values.min(), values.max()
    scaled = (values - low) / (high - low) if high > low else torch.zeros_like(values)
    rgba = matplotlib.colormaps[COLORMAP](scaled.numpy())
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def mark_query(picture: np.ndarray, pixel: Tuple[int, int]) -> np.ndarray:
    """Draw a hollow square of :data:`MARK_COLOR` centred on ``pixel`` (row, column)."""
    picture = Image.fromarray(picture)
    radius = max(2, min(picture.size) // 40)
    y, x = pixel
    ImageDraw.Draw(picture).rectangle((x - radius, y - radius, x + radius, y + radius),
                                      outline=MARK_COLOR, width=max(1, radius // 2))
    return np.asarray(picture)


def overlay(rgb: np.ndarray, values: torch.Tensor, *, query: Optional[Query] = None) -> np.ndarray:
    """The image ``rgb`` (H, W, 3) uint8 with the coloured map blended over it and, if given, the
    query marked."""
    coloured = colour_map(values, rgb.shape[:2])
    blended = (rgb.astype(np.float32) * (1 - ALPHA) + coloured * ALPHA).round().astype(np.uint8)
    return mark_query(blended, query_pixel(query, rgb.shape[:2])) if query else blended


def file_name(index: int, title: str) -> str:
    """``03_stage2.block1_linear.png`` for map 3 titled ``stage2.block1 linear``."""
    return f'{index:02d}_{re.sub(r"[^A-Za-z0-9.+-]+", "_", title).strip("_")}.png'


def sheet(panels: Sequence[Tuple[str, np.ndarray]], columns: int = SHEET_COLUMNS) -> np.ndarray:
    """Panels of one size, titled, in rows of ``columns``; white background."""
    height, width = panels[0][1].shape[:2]
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    canvas = Image.new('RGB', (columns * width, rows * (height + TITLE_HEIGHT)), 'white')
    draw = ImageDraw.Draw(canvas)
    for i, (title, panel) in enumerate(panels):
        left, top = i % columns * width, i // columns * (height + TITLE_HEIGHT)
        draw.text((left + 2, top + 2), title, fill='black')
        canvas.paste(Image.fromarray(panel), (left, top + TITLE_HEIGHT))
    return np.asarray(canvas)


def draw_maps(rgb: np.ndarray, maps: Maps, out_dir: str, *, query: Optional[Query] = None,
              as_sheet: bool = False) -> List[str]:
    """Write the maps over the image ``rgb`` (H, W, 3) uint8 to ``out_dir``: one PNG per map, or
    one ``sheet.png`` that starts with the image; ``query`` is marked when given. Returns the
    paths written."""
    os.makedirs(out_dir, exist_ok=True)
    panels = [(title, overlay(rgb, values, query=query)) for title, values in maps]
    if as_sheet:
        image = mark_query(rgb, query_pixel(query, rgb.shape[:2])) if query else rgb
        path = osp.join(out_dir, 'sheet.png')
        Image.fromarray(sheet([('image', image)] + panels)).save(path)
        return [path]
    paths = []
    for i, (title, panel) in enumerate(panels):
        paths.append(osp.join(out_dir, file_name(i, title)))
        Image.fromarray(panel).save(paths[-1])
    return paths
