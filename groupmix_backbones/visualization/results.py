"""What a training run produced, as pictures: its curves (from the run's own ``scalars.json``), a
grid of classified images, and a one-page summary of drawings made elsewhere."""
import glob
import io
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def read_scalars(work_dir: str) -> Tuple[List[dict], List[dict]]:
    """The training and validation records of the newest run in ``work_dir`` that logged any
    (mmengine's ``<timestamp>/vis_data/scalars.json``). Validation records get an ``iter``: epoch-
    based runs log them by epoch, placed at the last training record of that epoch."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in reversed(runs):
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        train = [r for r in records if 'loss' in r]
        if train:
            break
    else:
        raise FileNotFoundError(f'{work_dir}: no */vis_data/scalars.json with training losses '
                                "(mmengine's LocalVisBackend writes it while training).")
    val = [dict(r) for r in records if 'loss' not in r]
    by_epoch = 'epoch' in train[0]
    for record in val:
        if by_epoch:
            done = [r['iter'] for r in train if r['epoch'] <= record['step']]
            record['iter'] = max(done) if done else 0
        else:
            record['iter'] = record['step']
    return train, val


def plot_training_curves(runs: Dict[str, Tuple[str, str]], out_file: str,
                         losses: bool = True) -> str:
    """One row per run: its total loss (and the loss terms) against iterations, and its
    validation metric against iterations; without ``losses``, the metrics in one row. ``runs``
    maps a title to ``(work_dir, metric key)``."""
    if losses:
        fig, axes = plt.subplots(len(runs), 2, figsize=(9, 2.6 * len(runs)), squeeze=False)
    else:
        fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 2.6), squeeze=False)
        axes = [(None, ax) for ax in axes[0]]
    for (title, (work_dir, metric)), (loss_ax, metric_ax) in zip(runs.items(), axes):
        train, val = read_scalars(work_dir)
        iters = [r['iter'] for r in train]
        if loss_ax is not None:
            for key in [k for k in train[0] if k.startswith('loss_')]:
                loss_ax.plot(iters, [r.get(key, np.nan) for r in train], lw=0.8, label=key)
            loss_ax.plot(iters, [r['loss'] for r in train], 'k', lw=1.5, label='loss')
            loss_ax.set(title=f'{title}: training loss', xlabel='iteration')
            loss_ax.legend(fontsize=6, ncol=2)
        points = [(r['iter'], r[metric]) for r in val if metric in r]
        if points:
            metric_ax.plot(*zip(*points), 'o-', color='tab:green')
            metric_ax.annotate(f'{points[-1][1]:.3g}', points[-1], textcoords='offset points',
                               xytext=(-10, 6), fontsize=8)
        metric_ax.set(title=f'{title}: validation {metric}', xlabel='iteration',
                      xlim=(0, max(iters) * 1.05), ylim=(0, None))
        metric_ax.title.set_fontsize(9)
        metric_ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out_file)


def classification_grid(images: Sequence[np.ndarray], predicted: Sequence[str],
                        truth: Sequence[str], out_file: str, columns: int = 8) -> str:
    """RGB images in a grid, each titled with its predicted label and, when wrong, the true one
    (green: right, red: wrong)."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, image, pred, true in zip(axes.flat, images, predicted, truth):
        ax.imshow(image)
        right = pred == true
        ax.set_title(pred if right else f'{pred}\n(true: {true})', fontsize=7,
                     color='tab:green' if right else 'tab:red')
    right = sum(p == t for p, t in zip(predicted, truth))
    fig.suptitle(f'predicted labels: {right} of {len(images)} right', fontsize=9)
    fig.tight_layout()
    return _save(fig, out_file)


def summary_sheet(panels: Sequence[Tuple[str, str]], out_file: str, title: str = '',
                  columns: int = 2, width: float = 12., max_pixels: Optional[int] = None,
                  colors: Optional[int] = None) -> str:
    """Pictures ``(caption, png path)`` side by side, ``columns`` a row, one page; ``max_pixels``
    caps the page's width in pixels and ``colors`` the number of colours (a palette PNG): a small
    file for a README."""
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width, width / columns * 0.55 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, (caption, path) in zip(axes.flat, panels):
        ax.imshow(np.asarray(Image.open(path).convert('RGB')))
        ax.set_title(caption, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    dpi = 100 if max_pixels is None else max_pixels / width
    return _save(fig, out_file, dpi=dpi, colors=colors)


def _save(fig, out_file: str, dpi: float = 100, colors: Optional[int] = None) -> str:
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    if colors is None:
        fig.savefig(out_file, dpi=dpi)
    else:
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=dpi)
        Image.open(buffer).convert('RGB').quantize(colors).save(out_file, optimize=True)
    plt.close(fig)
    return out_file
