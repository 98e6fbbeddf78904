#!/usr/bin/env python
"""Generate a small, deterministic synthetic dataset of coloured shapes.

Three layouts are written under ``--out`` (default ``data/demo``), each in
the real on-disk format of its dataset so the stock mmpretrain / mmdet /
mmseg dataset classes can read it:

* ``imagenet/``  -- ``{train,val}/<cls>/<cls>_00001.JPEG`` plus
  ``meta/{train,val,classes}.txt`` (one shape per image).
* ``coco/``      -- ``{train,val}2017/*.jpg`` plus
  ``annotations/instances_{train,val}2017.json`` (1-4 shapes per image).
* ``ade/ADEChallengeData2016/`` -- ``images/{training,validation}/*.jpg``
  plus single-channel ``annotations/.../*.png`` label maps where 0 is
  background and ``i + 1`` is ``CLASSES[i]`` (ADE20K ignores 0 with ``reduce_zero_label``;
  the demo configs make the background a class).

Every shape is one polygon that is used both to paint the pixels and as the
annotation (mask / COCO segmentation), sampling pixel centres with the
even-odd rule.  A ring is a single "keyhole" polygon (outer boundary, a
zero-width seam, inner boundary reversed), so its COCO polygon, area and
rasterised mask all contain the hole.  Shapes in a scene never overlap.

Only numpy, Pillow and the standard library are used.  Same seed and
arguments give byte-identical files.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')
TASKS = ('cls', 'det', 'seg')
TASK_DIRS = {'cls': 'imagenet', 'det': 'coco', 'seg': 'ade'}
DEFAULTS = dict(num_train_cls=600, num_val_cls=50, cls_size=64,
                num_train_det=160, num_val_det=40, det_size=256,
                num_train_seg=600, num_val_seg=60, seg_size=128)
STAMP = '.demo_stamp.json'
VERSION = 1


# ----------------------------------------------------------------- geometry
def _ngon(n, r=1.0, phase=0.0):
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _templates():
    """Unit polygons (max vertex radius 1) for every class."""
    w = 0.32
    star_r = np.tile([1.0, 0.42], 5)[:, None]
    out, inner = _ngon(40), _ngon(40, 0.55)
    polys = {
        'circle': _ngon(40),
        'square': _ngon(4, phase=np.pi / 4),
        'triangle': _ngon(3, phase=-np.pi / 2),
        'star': _ngon(10, phase=-np.pi / 2) * star_r,
        'cross': np.array([(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1),
                           (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w),
                           (-w, 1)], float),
        # keyhole: outer loop, seam in, inner loop reversed, seam back out
        'ring': np.concatenate([out, out[:1], inner[:1], inner[:0:-1],
                                inner[:1]]),
    }
    return {k: v / np.hypot(*v.T).max() for k, v in polys.items()}


TEMPLATES = _templates()


def poly_mask(pts, h, w):
    """Rasterise polygon ``pts`` (N, 2) in pixel units to a bool (h, w) mask.

    A pixel is inside when its centre ``(x + .5, y + .5)`` is inside the
    polygon under the even-odd rule (the COCO convention).
    """
    x0, y0 = pts.T
    x1, y1 = np.roll(pts, -1, 0).T
    ys = np.arange(h)[:, None] + 0.5
    crosses = (y0 <= ys) != (y1 <= ys)
    dy = np.where(y1 == y0, 1.0, y1 - y0)
    xc = x0 + (ys - y0) * (x1 - x0) / dy
    # pixel j is left of crossing xc  <=>  j < ceil(xc - .5)
    k = np.clip(np.ceil(xc - 0.5), 0, w).astype(np.int64)
    idx = (np.arange(h)[:, None] * (w + 1) + k)[crosses]
    cnt = np.bincount(idx, minlength=h * (w + 1)).reshape(h, w + 1)
    right = cnt[:, ::-1].cumsum(1)[:, ::-1]  # crossings at index >= j
    return right[:, 1:] % 2 == 1


def poly_area(pts):
    """Shoelace area of a polygon (the keyhole ring gives outer - inner)."""
    x, y = pts.T
    return abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1))) / 2


def poly_bbox(pts, size):
    """Tight ``(x0, y0, x1, y1)`` box of a polygon clipped to the image."""
    lo = np.clip(pts.min(0), 0, size)
    hi = np.clip(pts.max(0), 0, size)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


# ---------------------------------------------------------------- rendering
def _background(rng, s):
    """Cluttered float32 RGB background: smooth noise, gradient or flat."""
    kind = rng.integers(3)
    if kind == 0:
        g = int(rng.integers(2, 6))
        low = rng.integers(0, 256, (g, g, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(low).resize((s, s), Image.BILINEAR),
                         np.float32) + rng.normal(0, 8, (s, s, 3))
    elif kind == 1:
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[:s, :s] / s
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        c1, c2 = rng.uniform(0, 255, (2, 3))
        img = c1 + t[..., None] * (c2 - c1) + rng.normal(0, 6, (s, s, 3))
    else:
        img = rng.uniform(0, 255, 3) + rng.normal(0, 20, (s, s, 3))
    for _ in range(rng.integers(0, 7)):  # faint random lines
        layer = Image.new('L', (s, s))
        ImageDraw.Draw(layer).line([float(v) for v in rng.uniform(0, s, 4)],
                                   fill=255, width=int(rng.integers(1, 3)))
        _blend(img, np.asarray(layer) > 0, rng.uniform(0, 255, 3),
               rng.uniform(0.2, 0.5))
    for _ in range(rng.integers(0, 6)):  # small irregular blobs
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.4, 1.0, n) * s * rng.uniform(0.02, 0.05)
        pts = rng.uniform(0, s, 2) + np.stack([r * np.cos(ang),
                                               r * np.sin(ang)], 1)
        _blend(img, poly_mask(pts, s, s), rng.uniform(0, 255, 3),
               rng.uniform(0.3, 0.6))
    return img.astype(np.float32)


def _blend(img, mask, colour, alpha):
    img[mask] = (1 - alpha) * img[mask] + alpha * colour


def _paint(rng, img, pts):
    """Fill polygon ``pts`` with a contrasting, textured colour."""
    mask = poly_mask(pts, *img.shape[:2])
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask
    cands = rng.uniform(0, 255, (16, 3))
    dist = np.linalg.norm(cands - img[mask].mean(0), axis=1)
    c = cands[np.argmax(dist >= 120) if (dist >= 120).any() else dist.argmax()]
    shade = c * 0.5 if c.mean() > 128 else c + (255 - c) * 0.5
    kind, a = rng.integers(4), rng.uniform(0, np.pi)
    proj = (xs * np.cos(a) + ys * np.sin(a))[:, None]
    if kind == 0:  # solid
        tex = np.broadcast_to(c, (len(ys), 3))
    elif kind == 1:  # stripes
        period = max(2.5, np.sqrt(len(ys)) * rng.uniform(0.15, 0.3))
        tex = np.where((proj / period) % 1 < 0.5, c, shade)
    elif kind == 2:  # noise
        tex = c + rng.normal(0, 30, (len(ys), 3))
    else:  # gradient
        t = (proj - proj.min()) / (np.ptp(proj) + 1e-6)
        tex = c + t * (shade - c)
    img[ys, xs] = tex
    return mask


def render_scene(rng, size, labels, scale):
    """Render shapes of class indices ``labels`` onto a cluttered background.

    ``scale`` is the (min, max) circumscribed diameter relative to ``size``.
    Placements whose boxes would touch an earlier shape are retried (up to 30
    times) and finally dropped.  Returns ``(uint8 image, [(label, pts,
    mask)])`` with ``pts`` rounded to 0.01 px (as stored in annotations).
    """
    img = _background(rng, size)
    boxes, shapes = [], []
    for label in labels:
        for _ in range(30):
            r = rng.uniform(*scale) * size / 2
            a = rng.uniform(0, 2 * np.pi)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            pts = TEMPLATES[CLASSES[label]] @ rot.T * r + rng.uniform(
                r, size - r, 2)
            pts = np.round(np.clip(pts, 0, size), 2)
            b = poly_bbox(pts, size)
            if all(b[0] > o[2] + 2 or b[2] < o[0] - 2 or b[1] > o[3] + 2
                   or b[3] < o[1] - 2 for o in boxes):
                boxes.append(b)
                shapes.append((int(label), pts, _paint(rng, img, pts)))
                break
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8), shapes


def _save_jpg(arr, path):
    Image.fromarray(arr).save(path, format='JPEG', quality=90)


# ------------------------------------------------------------------ writers
def _make_cls(root, seed, n_train, n_val, size):
    """ImageNet layout: one shape per image, 40-80% of the image side."""
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    for s, (split, n) in enumerate((('train', n_train), ('val', n_val))):
        lines = []
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(1, n + 1):
                rng = np.random.default_rng([seed, 0, s, c, i])
                img, _ = render_scene(rng, size, [c], (0.4, 0.8))
                rel = f'{split}/{name}/{name}_{i:05d}.JPEG'
                _save_jpg(img, root / rel)
                lines.append(f'{rel} {c}')
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return n_train * len(CLASSES), n_val * len(CLASSES)


def _make_det(root, seed, n_train, n_val, size):
    """COCO instances layout: 1-4 shapes per image, 20-45% of the side."""
    (root / 'annotations').mkdir(parents=True)
    cats = [dict(id=i + 1, name=n, supercategory='shape')
            for i, n in enumerate(CLASSES)]
    img_id = ann_id = 0
    for s, (split, n) in enumerate((('train', n_train), ('val', n_val))):
        (root / f'{split}2017').mkdir()
        images, anns = [], []
        for i in range(n):
            rng = np.random.default_rng([seed, 1, s, i])
            labels = rng.integers(0, len(CLASSES), rng.integers(1, 5))
            img, shapes = render_scene(rng, size, labels, (0.2, 0.45))
            img_id += 1
            name = f'{img_id:012d}.jpg'
            _save_jpg(img, root / f'{split}2017' / name)
            images.append(dict(id=img_id, file_name=name, width=size,
                               height=size))
            for label, pts, _ in shapes:
                ann_id += 1
                x0, y0, x1, y1 = poly_bbox(pts, size)
                anns.append(dict(
                    id=ann_id, image_id=img_id, category_id=label + 1,
                    bbox=[x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                    area=round(poly_area(pts), 2), iscrowd=0,
                    segmentation=[pts.ravel().tolist()]))
        coco = dict(info=dict(description='groupmix synthetic shapes demo'),
                    licenses=[], images=images, annotations=anns,
                    categories=cats)
        with open(root / 'annotations' / f'instances_{split}2017.json',
                  'w') as f:
            json.dump(coco, f)
    return n_train, n_val


def _make_seg(root, seed, n_train, n_val, size):
    """ADE20K layout: 1-4 shapes per image, label map 0 = background."""
    root = root / 'ADEChallengeData2016'
    for s, (split, short, n) in enumerate((('training', 'train', n_train),
                                           ('validation', 'val', n_val))):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(1, n + 1):
            rng = np.random.default_rng([seed, 2, s, i])
            labels = rng.integers(0, len(CLASSES), rng.integers(1, 5))
            img, shapes = render_scene(rng, size, labels, (0.2, 0.45))
            seg = np.zeros((size, size), np.uint8)
            for label, _, mask in shapes:
                seg[mask] = label + 1
            stem = f'ADE_{short}_{i:08d}'
            _save_jpg(img, root / 'images' / split / f'{stem}.jpg')
            Image.fromarray(seg).save(root / 'annotations' / split /
                                      f'{stem}.png')
    return n_train, n_val


MAKERS = {'cls': _make_cls, 'det': _make_det, 'seg': _make_seg}


def make_demo_data(out='data/demo', seed=0, tasks=TASKS, force=False,
                   verbose=True, **sizes):
    """Generate the demo data; ``sizes`` override keys of ``DEFAULTS``.

    A task whose folder holds a stamp with identical arguments is skipped
    unless ``force``; otherwise its folder is deleted and regenerated.
    Returns ``{task: dict(root, train, val, skipped)}``.
    """
    unknown = set(sizes) - set(DEFAULTS)
    if unknown:
        raise TypeError(f'unknown size arguments: {sorted(unknown)}')
    cfg = {**DEFAULTS, **{k: v for k, v in sizes.items() if v is not None}}
    results = {}
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f'unknown task {task!r}, expected one of {TASKS}')
        keys = (f'num_train_{task}', f'num_val_{task}', f'{task}_size')
        vals = [int(cfg[k]) for k in keys]
        root = Path(out) / TASK_DIRS[task]
        args = dict(version=VERSION, task=task, seed=int(seed),
                    **dict(zip(keys, vals)))
        data_root = root / 'ADEChallengeData2016' if task == 'seg' else root
        try:
            same = json.loads((root / STAMP).read_text()) == args
        except (OSError, ValueError):
            same = False
        if same and not force:
            n_tr, n_va = _counts(task, vals)
            results[task] = dict(root=str(data_root), train=n_tr, val=n_va,
                                 skipped=True)
            if verbose:
                print(f'{task}: up to date, skipped ({data_root})')
            continue
        if root.exists():
            shutil.rmtree(root)
        t0 = time.time()
        n_tr, n_va = MAKERS[task](root, int(seed), *vals)
        (root / STAMP).write_text(json.dumps(args, indent=1, sort_keys=True))
        results[task] = dict(root=str(data_root), train=n_tr, val=n_va,
                             skipped=False)
        if verbose:
            print(f'{task}: wrote {n_tr} train + {n_va} val images '
                  f'({vals[2]}x{vals[2]}, {len(CLASSES)} classes) to '
                  f'{data_root} in {time.time() - t0:.1f}s')
    return results


def _counts(task, vals):
    mul = len(CLASSES) if task == 'cls' else 1
    return vals[0] * mul, vals[1] * mul


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/demo', help='output root')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tasks', nargs='+', choices=TASKS, default=list(TASKS))
    for k, v in DEFAULTS.items():
        p.add_argument('--' + k.replace('_', '-'), type=int, default=None,
                       help=f'default {v}' + (' per class' if k.endswith(
                           'cls') else ''))
    p.add_argument('--force', action='store_true',
                   help='regenerate even if the stamp matches')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    make_demo_data(a.out, a.seed, a.tasks, a.force,
                   **{k: getattr(a, k) for k in DEFAULTS})


if __name__ == '__main__':
    main()
