"""docs/custom_datasets.md's worked example: each config of examples/custom_datasets/ (our model on
one's own classes, inheriting ours by groupmix_backbones::) trains a few iterations on the demo
data, which is such a set. The test makes only the compute CPU-sized: small images, no converted
checkpoint, a short schedule; every dataset, class and head setting is the config's own."""
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import groupmix_backbones  # noqa: F401  (our package references)
from conftest import REPO
from groupmix_backbones.runtime import prepare_cfg

EXAMPLES = {'cls': 'groupmixformer-small_1xb32_shapes.py',
            'det': 'mask-rcnn_groupmixformer-small_fpn_1x_shapes.py',
            'seg': 'upernet_groupmixformer-small_8xb2-20k_shapes-512x512.py'}
SIZE = {'cls': 64, 'det': 128, 'seg': 64}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def sized(value, size):
    return size if isinstance(value, int) else (size, size)


def cpu_sized(cfg, task, demo_root, work_dir):
    """``cfg`` on ``demo_root`` (its data_root's ``data/demo`` replaced), at ``SIZE[task]``
    pixels, from random weights, for one batch (two for segmentation), validated on two images."""
    for loader in LOADERS:
        cfg[loader].update(num_workers=0, persistent_workers=False)
        dataset = cfg[loader].dataset
        dataset.data_root = dataset.data_root.replace('data/demo', demo_root)
        for transform in dataset.pipeline:
            for key in ('scale', 'crop_size'):
                if key in transform:
                    transform[key] = sized(transform[key], SIZE[task])
    for evaluator in ('val_evaluator', 'test_evaluator'):
        if 'ann_file' in cfg[evaluator]:
            cfg[evaluator].ann_file = cfg[evaluator].ann_file.replace('data/demo', demo_root)
    if cfg.model.get('data_preprocessor', {}).get('size'):
        cfg.model.data_preprocessor.size = (SIZE[task], ) * 2
    cfg.model.backbone.init_cfg = None
    cfg.train_dataloader.dataset.indices = cfg.train_dataloader.batch_size  # one batch an epoch
    cfg.val_dataloader.dataset.indices = 2
    if task == 'det':  # fewer proposals and detections to test (random weights keep them all)
        cfg.model.test_cfg.rpn.update(nms_pre=100, max_per_img=50)
        cfg.model.test_cfg.rcnn.max_per_img = 10
    cfg.param_scheduler = None
    cfg.default_hooks.logger.interval = 1
    if task == 'seg':  # validated once, after training
        cfg.train_cfg.update(max_iters=2, val_interval=3)
        cfg.default_hooks.checkpoint.interval = 2
    else:
        cfg.train_cfg.update(max_epochs=1, val_interval=2)
    cfg.visualizer.name = f'visualizer:{work_dir}'
    return prepare_cfg(cfg, f'{task}.py', work_dir=str(work_dir))


@pytest.mark.parametrize('task', list(EXAMPLES))
def test_example_trains_on_own_classes(task, demo_root, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'examples', 'custom_datasets', EXAMPLES[task]))
    classes = (cfg.classes if task == 'cls' else cfg.metainfo['classes'])
    heads = {'cls': ['head'], 'det': ['roi_head.bbox_head', 'roi_head.mask_head'],
             'seg': ['decode_head', 'auxiliary_head']}[task]
    heads = [cfg.model.get(path.split('.')[0]) for path in heads] if task != 'det' else [
        cfg.model.roi_head.bbox_head, cfg.model.roi_head.mask_head]
    assert all(head.num_classes == len(classes) for head in heads)
    runner = Runner.from_cfg(cpu_sized(cfg, task, demo_root, tmp_path))
    assert runner.train_dataloader.dataset.metainfo['classes'] == tuple(classes)
    runner.train()
    metrics = runner.val_loop.run()
    assert {'cls': 'accuracy/top1', 'det': 'coco/segm_mAP', 'seg': 'mIoU'}[task] in metrics


def test_the_guide_shows_the_files():
    """Each python block of docs/custom_datasets.md that starts like an example is that file's
    code, its comment lines left out."""
    with open(osp.join(REPO, 'docs', 'custom_datasets.md')) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    for name in EXAMPLES.values():
        with open(osp.join(REPO, 'examples', 'custom_datasets', name)) as f:
            lines = [line for line in f.read().splitlines() if not line.strip().startswith('#')]
        code = re.sub(r'\n{3,}', '\n\n', '\n'.join(lines).strip('\n')) + '\n'
        assert code in blocks, name
