"""What is wrong in a dataset, found before a run reads it, each problem with the file it is in.

The dataset classes of mmpretrain (``CustomDataset``, ``ImageNet``), mmdet (``CocoDataset``) and
mmseg (``BaseSegDataset``, ``ADE20KDataset``) are built without loading (``lazy_init``), so that
paths, suffixes and classes are resolved as the libraries resolve them; then their files are
read here. Quick checks (before every training or test run) read annotation files and the last
bytes of each image; ``decode=True`` (``tools/misc/check_dataset.py``) also decodes every image
and label map.
"""
import json
import os
import os.path as osp
from typing import Callable, Iterable, Iterator, NamedTuple, Optional

import numpy as np
from PIL import Image

# (what a file of a format starts with, what it ends with when whole): JPEG's start and end of
# image markers, PNG's signature and IEND chunk. Found by content: ImageNet has PNGs named .JPEG
FORMATS = {'JPEG': (b'\xff\xd8\xff', b'\xff\xd9'),
           'PNG': (b'\x89PNG\r\n\x1a\n', b'IEND\xaeB`\x82')}
SHOWN = 20  # problems listed in a DatasetError; the rest are counted


class Problem(NamedTuple):
    path: str
    what: str

    def __str__(self):
        return f'{self.path}: {self.what}'


class DatasetError(ValueError):
    """A dataset a run would read has problems; the message lists them, file by file."""


def build_lazily(dataset_cfg: dict, scope: str):
    """The dataset of ``dataset_cfg`` with paths resolved and nothing loaded (no pipeline)."""
    from mmengine.registry import DATASETS
    cfg = dict(dataset_cfg, lazy_init=True, pipeline=[])
    with DATASETS.switch_scope_and_registry(scope) as registry:
        return registry.build(cfg)


def image_problem(path: str, decode: bool = False) -> Optional[str]:
    """What is wrong with the image (or label map) file ``path``, or None."""
    if not osp.isfile(path):
        return 'missing'
    size = osp.getsize(path)
    if size == 0:
        return 'empty file'
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, size - 64))
        tail = f.read().rstrip(b'\0')  # some writers pad with zeros
    for name, (start, end) in FORMATS.items():
        if head.startswith(start) and end not in tail:
            return (f'truncated: {size} bytes, a {name} without its end marker (a partial '
                    'download or copy?)')
    if decode:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as error:  # noqa: BLE001  (PIL raises many kinds)
            return f'cannot be decoded ({type(error).__name__}: {error})'
    return None


def label_map_problem(path: str, valid: Callable[[np.ndarray], np.ndarray],
                      expected: str) -> Optional[str]:
    """What is wrong with the values of the label map ``path`` (decoded), or None."""
    with Image.open(path) as image:
        values = np.unique(np.asarray(image))
    wrong = values[~valid(values)]
    if len(wrong):
        return f'label values {wrong.tolist()} beyond the classes ({expected})'
    return None


def check_files(paths: Iterable[str], decode: bool,
                progress: Callable[[list], Iterable] = iter) -> Iterator[Problem]:
    for path in progress(list(paths)):
        what = image_problem(path, decode=decode)
        if what:
            yield Problem(path, what)


def classification_problems(dataset, decode, progress) -> Iterator[Problem]:
    """mmpretrain's CustomDataset/ImageNet: the annotation list (``path label`` lines, labels
    within the classes) or, without one, the class folders (one per class, nothing loose)."""
    classes = dataset.metainfo.get('classes')
    prefix = dataset.img_prefix
    if dataset.ann_file:
        files = []
        for number, line in enumerate(open(dataset.ann_file), start=1):
            fields = line.strip().rsplit(' ', 1) if dataset.with_label else [line.strip()]
            where = f'{dataset.ann_file}:{number}'
            if not line.strip():
                continue
            if dataset.with_label:
                if len(fields) != 2 or not fields[1].lstrip('-').isdigit():
                    yield Problem(where, f'{line.strip()!r} is not "<image path> <label>"')
                    continue
                if classes is not None and not 0 <= int(fields[1]) < len(classes):
                    yield Problem(where, f'label {fields[1]} of {fields[0]} is beyond the '
                                  f'{len(classes)} classes (0..{len(classes) - 1})')
            files.append(osp.join(prefix, fields[0]))
        yield from check_files(files, decode, progress)
        return
    if not osp.isdir(prefix):
        yield Problem(prefix, 'missing image folder')
        return
    entries = sorted(os.listdir(prefix))
    folders = [e for e in entries if osp.isdir(osp.join(prefix, e))]
    loose = [e for e in entries if e not in folders]
    if loose:
        yield Problem(prefix, f'{len(loose)} files outside the class folders (e.g. {loose[0]}): '
                      'images must sit in one folder per class')
    if dataset.with_label and classes is not None and folders != sorted(classes):
        missing = sorted(set(classes) - set(folders))
        extra = sorted(set(folders) - set(classes))
        yield Problem(prefix, f'class folders do not match the {len(classes)} classes: missing '
                      f'{missing or "none"}, not a class {extra or "none"}')
    elif dataset.with_label and classes is not None and list(classes) != folders:
        wrong = next(i for i, (c, f) in enumerate(zip(classes, folders)) if c != f)
        yield Problem(prefix, f'the classes are not in sorted order: folders are labelled in '
                      f'sorted order, so the images of {folders[wrong]}/ would be '
                      f'{classes[wrong]!r}s (sort the classes or give an annotation list)')
    files = []
    for folder in folders:
        names = [n for root, _, found in os.walk(osp.join(prefix, folder)) for n in
                 (osp.join(root, f) for f in found) if n.lower().endswith(dataset.extensions)]
        if not names:
            yield Problem(osp.join(prefix, folder), 'class folder without images')
        files += sorted(names)
    yield from check_files(files, decode, progress)


def coco_problems(dataset, decode, progress) -> Iterator[Problem]:
    """mmdet's CocoDataset: the annotation file's categories, annotations and images."""
    ann_file = dataset.ann_file
    try:
        coco = json.load(open(ann_file))
    except ValueError as error:
        yield Problem(ann_file, f'not valid JSON ({error})')
        return
    missing_keys = [k for k in ('images', 'annotations', 'categories') if k not in coco]
    if missing_keys:
        yield Problem(ann_file, f'no {", ".join(missing_keys)} list: not a COCO annotation file')
        return
    if not coco['annotations'] and not dataset.test_mode:
        yield Problem(ann_file, f'the annotation list is empty ({len(coco["images"])} images): '
                      'nothing to train on')
    category_ids = {c['id'] for c in coco['categories']}
    image_ids = {image['id'] for image in coco['images']}
    unknown = {}
    for ann in coco['annotations']:
        if ann.get('category_id') not in category_ids:
            unknown.setdefault(ann.get('category_id'), []).append(ann.get('id'))
        if ann.get('image_id') not in image_ids:
            yield Problem(ann_file, f'annotation {ann.get("id")} is of image '
                          f'{ann.get("image_id")}, which is not in the image list')
    for category, ann_ids in sorted(unknown.items(), key=str):
        yield Problem(ann_file, f'{len(ann_ids)} annotations (ids {ann_ids[:5]}) have category_id '
                      f'{category}, which is not among the categories {sorted(category_ids)} '
                      '(mmdet would drop them silently)')
    classes = dataset.metainfo.get('classes') or ()
    names = {c.get('name') for c in coco['categories']}
    absent = [c for c in classes if c not in names]
    if absent:
        yield Problem(ann_file, f'classes {absent} of the config are not among its categories')
    yield from check_files((osp.join(dataset.data_prefix['img'], image['file_name'])
                            for image in coco['images']), decode, progress)


def segmentation_problems(dataset, decode, progress) -> Iterator[Problem]:
    """mmseg's BaseSegDataset: every image has its label map; decoded, the maps' values are
    classes (after ``reduce_zero_label``) or the ignore index."""
    images, maps = dataset.data_prefix.get('img_path'), dataset.data_prefix.get('seg_map_path')
    if dataset.ann_file and osp.isfile(dataset.ann_file):
        names = [line.strip() for line in open(dataset.ann_file) if line.strip()]
    elif not osp.isdir(images):
        yield Problem(images, 'missing image folder')
        return
    else:
        names = sorted(osp.relpath(osp.join(root, f), images)[:-len(dataset.img_suffix)]
                       for root, _, found in os.walk(images) for f in found
                       if f.endswith(dataset.img_suffix))
    if not names:
        yield Problem(images, f'no {dataset.img_suffix} images')
    if maps and osp.isdir(maps) and not (dataset.ann_file and osp.isfile(dataset.ann_file)):
        for root, _, found in os.walk(maps):  # listed by their images: a lone map is a lost image
            for name in sorted(f for f in found if f.endswith(dataset.seg_map_suffix)):
                stem = osp.relpath(osp.join(root, name), maps)[:-len(dataset.seg_map_suffix)]
                if not osp.isfile(osp.join(images, stem + dataset.img_suffix)):
                    yield Problem(osp.join(images, stem + dataset.img_suffix),
                                  f'missing (its label map {osp.join(root, name)} exists)')
    files = [osp.join(images, name + dataset.img_suffix) for name in names]
    label_maps = [osp.join(maps, name + dataset.seg_map_suffix) for name in names] if maps else []
    problems = list(check_files(files + label_maps, decode, progress))
    yield from problems
    if not decode or not label_maps:
        return
    n, ignore = len(dataset.metainfo['classes']), dataset.ignore_index
    if dataset.reduce_zero_label:  # 0 is ignored, v is class v - 1
        expected = f'1..{n} for the {n} classes, 0 and {ignore} ignored'
        valid = lambda v: (v <= n) | (v == ignore)  # noqa: E731
    else:
        expected = f'0..{n - 1} for the {n} classes, {ignore} ignored'
        valid = lambda v: (v < n) | (v == ignore)  # noqa: E731
    broken = {p.path for p in problems}
    for path in label_maps:
        what = None if path in broken else label_map_problem(path, valid, expected)
        if what:
            yield Problem(path, what)


CHECKERS = dict(CustomDataset=classification_problems, CocoDataset=coco_problems,
                BaseSegDataset=segmentation_problems)


def leaf_datasets(dataset):
    """The dataset configs inside wrappers such as RepeatDataset and ConcatDataset (or
    ``dataset`` itself)."""
    inner = [dataset['dataset']] if dataset.get('dataset') else dataset.get('datasets') or []
    for wrapped in inner:
        yield from leaf_datasets(wrapped)
    if not inner:
        yield dataset


def dataset_problems(dataset_cfg: dict, scope: str, decode: bool = False,
                     progress: Callable[[list], Iterable] = iter) -> Iterator[Problem]:
    """Every problem of the dataset of ``dataset_cfg`` (wrappers such as RepeatDataset and
    ConcatDataset: of each dataset inside) in the registry ``scope``. ``progress`` wraps the list
    of files to read (a progress bar)."""
    for leaf in leaf_datasets(dataset_cfg):
        dataset = build_lazily(leaf, scope)
        bases = [base.__name__ for base in type(dataset).__mro__]  # the libraries' base classes
        checker = next((CHECKERS[name] for name in bases if name in CHECKERS), None)
        if checker is not None:
            yield from checker(dataset, decode, progress)


def check_datasets(cfg, dataloaders: Iterable[str], decode: bool = False):
    """Raise a :class:`DatasetError` listing the problems of the datasets of ``dataloaders``."""
    problems = []
    for loader in dataloaders:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset:
            problems += [(loader, p) for p in dataset_problems(
                dataset, cfg.get('default_scope'), decode=decode)]
    if problems:
        listed = '\n'.join(f'  {loader}: {problem}' for loader, problem in problems[:SHOWN])
        more = (f'\n  ... and {len(problems) - SHOWN} more' if len(problems) > SHOWN else '')
        raise DatasetError(f'{len(problems)} problems in the data of this run:\n{listed}{more}\n'
                           'Fix or remove these files (python tools/misc/check_dataset.py CONFIG '
                           'lists every problem, decoding every image).')
