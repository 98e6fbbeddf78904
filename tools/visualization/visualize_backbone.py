"""Draw a backbone's maps over your own image (GroupMixFormer and FLatten: each block's attention
of a query; SG-Former: significance maps), one PNG per map or one sheet.

    python tools/visualization/visualize_backbone.py CONFIG CHECKPOINT IMAGE --out-dir DIR
        [--query Y X] [--layers PATTERN ...] [--sheet] [--device cpu]

CONFIG is any of our classification, detection or segmentation configs (its ``model.backbone`` is
used); the image is normalised with the config's data preprocessor at its own size (no resize).
``--query`` is a point: decimals in [0, 1] are fractions of the height / width, integers pixels
(default: the centre). ``--layers`` keeps the maps whose titles match (e.g. ``'stage1.*'``).
"""
import argparse
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.registry import MODELS
from PIL import Image, UnidentifiedImageError

import groupmix_backbones  # noqa: F401  registers the backbones, makes checkpoint loading safe
from groupmix_backbones.runtime import replace_sync_bn
from groupmix_backbones.visualization import (draw_maps, get_visualizer, marked_query, select_maps,
                                              visualize)


def backbone_config(cfg: Config, config_path: str) -> dict:
    """``model.backbone`` of ``cfg``, checked to have a visualizer, without its ``init_cfg`` (the
    checkpoint gives the weights)."""
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict) or 'type' not in backbone:
        raise ValueError(f'{config_path}: no model.backbone with a type; give a classifier, '
                         'detector or segmentor config of this project.')
    get_visualizer(backbone['type'])  # an unknown type lists the backbones that have one
    backbone = dict(backbone, init_cfg=None)
    replace_sync_bn(backbone)
    return backbone


def load_backbone(backbone_cfg: dict, checkpoint: str, device: str = 'cpu') -> torch.nn.Module:
    """Build the backbone and load its weights from ``checkpoint`` (a whole model's, keys under
    ``backbone.``, or a backbone's) through the safe loader; a checkpoint that does not fit is
    an error."""
    backbone = MODELS.build(backbone_cfg)
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError(f'Checkpoint {checkpoint!r} holds no state dict.')
    if any(key.startswith('backbone.') for key in state):
        state = {key[len('backbone.'):]: value for key, value in state.items()
                 if key.startswith('backbone.')}
    # the backbone's own check (check_backbone_state) refuses missing, mis-shaped and foreign keys
    missing = backbone.load_state_dict(state, strict=False).missing_keys
    if missing:
        raise ValueError(f'Checkpoint {checkpoint!r} lacks {len(missing)} tensors of the '
                         f'backbone, e.g. {missing[:3]}.')
    return backbone.to(device).eval()


def load_image(path: str) -> np.ndarray:
    """The image at ``path`` as RGB (H, W, 3) uint8."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image {path!r} does not exist.')
    try:
        with Image.open(path) as image:
            return np.array(image.convert('RGB'))
    except UnidentifiedImageError:
        raise ValueError(f'{path!r} is not an image PIL can read (PNG, JPEG, ...).') from None


def normalise(rgb: np.ndarray, cfg: Config) -> torch.Tensor:
    """(1, 3, H, W) input: the config's data preprocessor mean / std (0-255), channels in RGB
    order when it converts to RGB (``to_rgb`` / ``bgr_to_rgb``), else BGR."""
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    image = torch.from_numpy(rgb).float().permute(2, 0, 1)
    if not preprocessor.get('to_rgb', preprocessor.get('bgr_to_rgb', False)):
        image = image.flip(0)
    mean = torch.tensor(preprocessor.get('mean') or [0.] * 3).view(3, 1, 1)
    std = torch.tensor(preprocessor.get('std') or [1.] * 3).view(3, 1, 1)
    return ((image - mean) / std)[None]


def query_fractions(values, image_hw):
    """``--query Y X`` as fractions of the image: decimals in [0, 1] pass, integers are pixels
    (their centres)."""
    if values is None:
        return None
    fractions = []
    for text, size, axis in zip(values, image_hw, ('Y', 'X')):
        try:
            value = int(text)
        except ValueError:
            value = float(text)
            if not 0 <= value <= 1:
                raise ValueError(f'--query {axis} {text}: a decimal is a fraction in [0, 1]; '
                                 'give pixels as integers.') from None
            fractions.append(value)
            continue
        if not 0 <= value < size:
            raise ValueError(f'--query {axis} {text}: pixel outside the image ({size} pixels; '
                             'integers are pixels, decimals in [0, 1] fractions).')
        fractions.append((value + 0.5) / size)
    return tuple(fractions)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='classification, detection or segmentation config')
    parser.add_argument('checkpoint', help="trained model's or converted backbone checkpoint")
    parser.add_argument('image', help='any image PIL reads, drawn at its own size')
    parser.add_argument('--out-dir', required=True, help='where the PNGs go')
    parser.add_argument('--query', nargs=2, metavar=('Y', 'X'),
                        help='query point: fractions (0.5 0.25) or pixels (120 64)')
    parser.add_argument('--layers', nargs='+', metavar='PATTERN',
                        help="maps to draw, by title or pattern (e.g. 'stage1.*')")
    parser.add_argument('--sheet', action='store_true', help='one sheet.png of all maps')
    parser.add_argument('--device', default='cpu', help='e.g. cuda:0')
    args = parser.parse_args(argv)
    rgb = load_image(args.image)
    query = query_fractions(args.query, rgb.shape[:2])
    cfg = Config.fromfile(args.config)
    backbone_cfg = backbone_config(cfg, args.config)
    backbone = load_backbone(backbone_cfg, args.checkpoint, args.device)
    maps = select_maps(visualize(backbone, normalise(rgb, cfg).to(args.device), query=query),
                       args.layers)
    paths = draw_maps(rgb, maps, args.out_dir, as_sheet=args.sheet,
                      query=marked_query(backbone_cfg['type'], query))
    print(f'Wrote {len(paths)} PNG(s) of {len(maps)} map(s) to {args.out_dir}')
    return paths


if __name__ == '__main__':
    main()
