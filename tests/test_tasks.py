"""Short real Runner trainings on the demo data, resume, a 2-process run and the inference APIs."""
import glob
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import CheckpointLoader, Runner

import groupmix_backbones  # noqa: F401
from conftest import REPO, load_tool
from groupmix_backbones.runtime import prepare_cfg, replace_sync_bn

DATA = {'cls': 'imagenet', 'det': 'coco/', 'seg': 'ade/ADEChallengeData2016'}
demo_tool = load_tool('tools/demo.py')
DEMOS = {(family, task): config  # (family, task): demo config, as tools/demo.py runs them
         for family, configs in demo_tool.FAMILIES.items() for task, config in configs.items()}
METRIC = {'cls': 'accuracy/top1', 'det': 'coco/segm_mAP', 'seg': 'mIoU'}


def short_run_options(task, demo_root):
    """--cfg-options that point a demo config at ``demo_root`` and shorten its schedule."""
    root = osp.join(demo_root, DATA[task])
    options = {f'{loader}.dataset.data_root': root
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({'default_hooks.logger.interval': 1, 'param_scheduler': None})
    if task == 'seg':
        options.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                        'default_hooks.checkpoint.interval': 2})
    else:
        options.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                        'default_hooks.checkpoint.interval': 1})
    if task != 'cls':  # from random weights here; test_downstream_demos_load_the_classifier checks
        options['model.backbone.init_cfg'] = None  # the init from the classification demo
    if task == 'det':
        ann = osp.join(root, 'annotations/instances_val2017.json')
        options.update({'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann})
    return options


def short_cfg(demo, demo_root, work_dir):
    config, task = osp.join(REPO, DEMOS[demo]), demo[1]
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(short_run_options(task, demo_root))
    # a visualizer per run: mmengine reuses an instance of the same name made earlier in this
    # process, with that run's save_dir
    cfg.visualizer.name = f'visualizer:{work_dir}'
    return prepare_cfg(cfg, config, work_dir=str(work_dir))


@pytest.fixture(scope='module', params=list(DEMOS), ids='-'.join)
def trained(request, demo_root, tmp_path_factory):
    """Train each demo config briefly in this process; yields (demo, work dir, checkpoint, metrics)."""
    demo = request.param
    work_dir = tmp_path_factory.mktemp('-'.join(demo))
    runner = Runner.from_cfg(short_cfg(demo, demo_root, work_dir))
    runner.train()
    checkpoint = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    yield demo, work_dir, checkpoint, runner.val_loop.run()


def test_train_and_validate(trained):
    (_, task), _, checkpoint, metrics = trained
    assert osp.isfile(checkpoint)
    assert 0 <= metrics[METRIC[task]] <= 100


def test_test_loop_and_resume(trained, demo_root, tmp_path):
    demo, work_dir, checkpoint, _ = trained
    task = demo[1]
    cfg = short_cfg(demo, demo_root, tmp_path)
    cfg.load_from = checkpoint
    assert METRIC[task] in Runner.from_cfg(cfg).test()
    if task == 'seg':
        return
    resume_dir = tmp_path / 'resume'
    shutil.copytree(work_dir, resume_dir)
    with open(resume_dir / 'last_checkpoint', 'w') as f:
        f.write(str(resume_dir / osp.basename(checkpoint)))
    cfg = short_cfg(demo, demo_root, resume_dir)
    cfg.train_cfg.max_epochs = 2
    cfg.resume = True  # from the latest checkpoint in the work dir
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 2 and osp.isfile(resume_dir / 'epoch_2.pth')


@pytest.mark.parametrize('trained', [demo for demo in DEMOS if demo[1] == 'cls'], indirect=True,
                         ids='-'.join)
def test_downstream_demos_load_the_classifier(trained):
    """The det and seg demo backbones start from the classification demo's checkpoint.

    Only the dense-prediction additions (``new_state_prefixes``, e.g. GroupMixFormer's output
    norms) start fresh."""
    (family, _), _, checkpoint, _ = trained
    saved = CheckpointLoader.load_checkpoint(checkpoint)['state_dict']
    for downstream in ('det', 'seg'):
        cfg = Config.fromfile(osp.join(REPO, DEMOS[family, downstream]))
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
        replace_sync_bn(cfg.model)
        backbone = MODELS.build(cfg.model.backbone)
        backbone.init_weights()
        state = {k: v for k, v in backbone.state_dict().items()
                 if not k.startswith(backbone.new_state_prefixes)}
        assert not [k for k in state if 'backbone.' + k not in saved]
        assert all(torch.equal(v, saved['backbone.' + k]) for k, v in state.items())


def test_inference_apis(trained, demo_root, tmp_path):
    (family, task), _, checkpoint, _ = trained
    config = osp.join(REPO, DEMOS[family, task])
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from infer import build_inferencer
    if task == 'det':
        from mmdet.apis import inference_detector, init_detector
        image = osp.join(demo_root, 'coco/val2017', sorted(os.listdir(
            osp.join(demo_root, 'coco/val2017')))[0])
        for weights in (None, checkpoint):
            result = inference_detector(init_detector(config, weights, device='cpu'), image)
            assert result.pred_instances.bboxes.shape[1] == 4
    elif task == 'seg':
        from mmseg.apis import inference_model, init_model
        folder = osp.join(demo_root, 'ade/ADEChallengeData2016/images/validation')
        image = osp.join(folder, sorted(os.listdir(folder))[0])
        for weights in (None, checkpoint):
            result = inference_model(init_model(config, weights, device='cpu'), image)
            assert result.pred_sem_seg.data.shape[-2:] == (64, 64)
    else:
        folder = osp.join(demo_root, 'imagenet/val/circle')
        image = osp.join(folder, sorted(os.listdir(folder))[0])
    for weights in (None, checkpoint):
        inferencer = build_inferencer(config, weights)
        out = tmp_path / f'vis_{weights is None}'
        kwargs = dict(show_dir=str(out)) if task == 'cls' else dict(out_dir=str(out))
        result = inferencer(image, **kwargs)
        assert result
        drawn = [f for _, _, files in os.walk(out) for f in files if f.endswith(('.jpg', '.png',
                                                                                 '.JPEG'))]
        assert drawn, f'no drawing written under {out}'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_job(commands, timeout=600):
    """Start every (command, env) at once, as the processes of one distributed job, on a free
    port (PORT for tools/dist_*.sh, MASTER_PORT for the Slurm launcher); wait for all and fail
    with each failed process's output. Another process can take the port between free_port()
    and the job's bind: on EADDRINUSE the job runs once more on a new port."""
    for attempt in range(2):
        port = str(free_port())
        processes = [subprocess.Popen(command, cwd=REPO, env=dict(env, PORT=port, MASTER_PORT=port),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for command, env in commands]
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
        if attempt == 0 and any('EADDRINUSE' in out for out in outputs):
            continue
        for p, out in zip(processes, outputs):
            assert p.returncode == 0, out[-5000:]
        return


def environment(**variables):
    """The environment of a distributed job's processes: this checkout's package, no GPU, one
    OpenMP thread each, ``variables`` added."""
    return dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
                PYTHON=sys.executable, **{k: str(v) for k, v in variables.items()})


def scalars(work_dir):
    """Every line of rank 0's scalars.json in ``work_dir``."""
    found = [osp.join(root, f) for root, _, files in os.walk(work_dir) for f in files
             if f == 'scalars.json']
    assert len(found) == 1, found
    return [json.loads(line) for line in open(found[0])]


@pytest.mark.parametrize('task', ['cls', 'seg'])
def test_two_process_validation_equals_the_test_of_its_checkpoint(task, demo_root, tmp_path):
    """A 2-process run through tools/dist_train.sh validates with the model it saves: its last
    validation and tools/dist_test.sh on the checkpoint saved at that moment give the same
    metric. The demo models' BatchNorm (SyncBN on a GPU) learns running statistics per process;
    without NormStatsSyncHook each rank validated with its own while rank 0's were saved.
    Epoch-based (classification) and iteration-based (segmentation, where the checkpoint is
    written before the validation of the same iteration) loops."""
    demo = 'groupmixformer', task
    run_options = short_run_options(task, demo_root)
    if task == 'seg':  # a few iterations more: statistics apart enough to move some pixels
        run_options.update({'train_cfg.max_iters': 6, 'train_cfg.val_interval': 6,
                            'default_hooks.checkpoint.interval': 6})
    options = ['--cfg-options', *[f'{k}={v}' for k, v in run_options.items()]]
    run_job([(['bash', 'tools/dist_train.sh', DEMOS[demo], '2', '--work-dir', str(tmp_path),
               *options], environment())])
    text = open(glob.glob(str(tmp_path / '*' / '*.log'))[0]).read()
    assert 'Distributed training: True' in text and 'GPU number: 2' in text  # mmengine's words
    validated = [line[METRIC[task]] for line in scalars(tmp_path) if METRIC[task] in line][-1]
    checkpoint = open(tmp_path / 'last_checkpoint').read().strip()
    assert osp.basename(checkpoint) == ('epoch_1.pth' if task == 'cls' else 'iter_6.pth')
    metrics = tmp_path / 'test' / 'metrics.json'
    run_job([(['bash', 'tools/dist_test.sh', DEMOS[demo], checkpoint, '2', '--work-dir',
               str(tmp_path / 'test'), '--metrics-out', str(metrics), *options], environment())])
    assert json.load(open(metrics))[METRIC[task]] == validated


@pytest.mark.parametrize('trained', [('groupmixformer', 'cls')], indirect=True, ids='-'.join)
def test_test_tool_needs_only_the_test_split_and_fails_on_a_mismatched_checkpoint(
        trained, demo_root, tmp_path, in_repo):
    (family, task), _, checkpoint, _ = trained
    data = tmp_path / 'data'
    shutil.copytree(osp.join(demo_root, DATA[task]), data / DATA[task])
    shutil.rmtree(data / DATA[task] / 'train')
    os.remove(data / DATA[task] / 'meta/train.txt')
    options = [f'{k}={v}' for k, v in short_run_options(task, str(data)).items()]
    test = load_tool('tools/test.py')
    metrics = tmp_path / 'metrics.json'

    def evaluate(weights, *extra):
        test.main([DEMOS[family, task], str(weights), '--work-dir', str(tmp_path / 'work'),
                   '--metrics-out', str(metrics), *extra, '--cfg-options', *options])
        return json.load(open(metrics))[METRIC[task]]

    assert 0 <= evaluate(checkpoint) <= 100
    assert evaluate(checkpoint, '--fuse') == evaluate(checkpoint)  # batch norms folded
    saved = CheckpointLoader.load_checkpoint(checkpoint)
    torch.save(saved['state_dict'], tmp_path / 'bare.pth')  # a bare state dict fits as well
    assert evaluate(tmp_path / 'bare.pth') == evaluate(checkpoint)
    weight = saved['state_dict']['head.fc.weight']
    saved['state_dict']['head.fc.weight'] = torch.zeros(7, weight.shape[1])  # 7 classes, not 6
    torch.save(saved, tmp_path / 'seven_classes.pth')
    with pytest.raises(RuntimeError, match='size mismatch for head.fc.weight'):
        evaluate(tmp_path / 'seven_classes.pth')


@pytest.mark.parametrize('trained', [('groupmixformer', task) for task in DATA], indirect=True,
                         ids='-'.join)
def test_test_tool_tta_and_out(trained, demo_root, tmp_path, in_repo):
    """tools/test.py --tta tests through the config's tta_model on its tta_pipeline (mmpretrain's
    flip default for classifiers) and --out keeps the predictions as each library's tool does."""
    import mmengine
    from PIL import Image
    (family, task), _, checkpoint, _ = trained
    options = [f'{k}={v}' for k, v in short_run_options(task, demo_root).items()]
    test = load_tool('tools/test.py')
    out = {tta: str(tmp_path / (f'out_{tta}' + ('' if task == 'seg' else '.pkl')))
           for tta in (False, True)}
    for tta in (False, True):
        metrics = tmp_path / f'metrics_{tta}.json'
        test.main([DEMOS[family, task], checkpoint, '--work-dir', str(tmp_path / 'work'),
                   '--out', out[tta], '--metrics-out', str(metrics), *(['--tta'] if tta else []),
                   '--cfg-options', *options])
        assert 0 <= json.load(open(metrics))[METRIC[task]] <= 100
    if task == 'seg':  # a folder of label maps at the images' size, classes only
        for tta in (False, True):
            maps = sorted(glob.glob(osp.join(out[tta], '*.png')))
            assert len(maps) == 4
            for path in maps:
                labels = np.asarray(Image.open(path))
                assert labels.shape == (64, 64) and labels.max() < 7
        return
    plain, augmented = (mmengine.load(out[tta]) for tta in (False, True))
    images = glob.glob(osp.join(demo_root, DATA[task], 'val*', '**', '*.*'), recursive=True)
    assert len(plain) == len(augmented) == len(images)
    if task == 'cls':  # the flipped view's scores averaged in
        for before, after in zip(plain, augmented):
            assert torch.allclose(after['pred_score'].sum(), torch.tensor(1.))
            assert not torch.allclose(before['pred_score'], after['pred_score'])
    else:  # masks kept (RLE), views merged: the first view is flipped, the plain test's is not
        for before, after in zip(plain, augmented):
            assert 'flip' not in before and after['flip']
            instances = after['pred_instances']
            assert len(instances['masks']) == len(instances['bboxes']) <= 100
            assert all(mask['size'] == [128, 128] for mask in instances['masks'])


def test_test_tool_refuses_what_it_cannot_do(demo_root, tmp_path):
    test = load_tool('tools/test.py')
    det = Config.fromfile(osp.join(REPO, DEMOS['groupmixformer', 'det']))
    with pytest.raises(ValueError, match=r'--out .*predictions.json.*\.pkl or \.pickle'):
        test.prediction_dump(det, 'predictions.json')
    for key in ('tta_model', 'tta_pipeline'):
        det.pop(key)
    with pytest.raises(ValueError, match='no tta_model and no tta_pipeline'):
        test.use_test_time_augmentation(det)


def test_instance_tta_merges_views_and_keeps_their_masks():
    """Two views of a 4 x 6 image, the second flipped: its duplicate of the first view's
    detection goes (NMS), its other detection stays with its mask flipped back."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from groupmix_backbones.engine import InstanceSegTTAModel
    detector = Config.fromfile(osp.join(REPO, DEMOS['groupmixformer', 'det'])).model
    detector.backbone.init_cfg = None

    def view(flip, bboxes, scores, masks):
        sample = DetDataSample(metainfo=dict(ori_shape=(4, 6), flip=flip,
                                             flip_direction='horizontal'))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor(bboxes, dtype=torch.float32), scores=torch.tensor(scores),
            labels=torch.zeros(len(scores), dtype=torch.long), masks=torch.tensor(masks))
        return sample

    left = [[True, True, False, False, False, False]] * 4  # columns 0-1
    right = [row[::-1] for row in left]  # columns 4-5: the left mask seen flipped
    top_right = [[False] * 3 + [True] * 3] + [[False] * 6] * 3  # row 0, columns 3-5
    top_left = [row[::-1] for row in top_right]
    tta = InstanceSegTTAModel(module=MODELS.build(detector),
                              tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                           max_per_img=10))
    merged, = tta.merge_preds([[view(False, [[0, 0, 2, 4]], [0.9], [left]),
                                view(True, [[4, 0, 6, 4], [3, 0, 6, 1]], [0.8, 0.7],
                                     [right, top_right])]])
    instances = merged.pred_instances
    assert torch.equal(instances.scores, torch.tensor([0.9, 0.7]))
    assert torch.equal(instances.bboxes, torch.tensor([[0., 0., 2., 4.], [0., 0., 3., 1.]]))
    assert torch.equal(instances.masks, torch.tensor([left, top_left]))


def test_infer_tool_makes_its_output_folder(demo_root, tmp_path, in_repo):
    folder = osp.join(demo_root, 'imagenet/val/circle')
    image = osp.join(folder, sorted(os.listdir(folder))[0])
    out = tmp_path / 'not' / 'yet'
    load_tool('tools/infer.py').main([DEMOS['groupmixformer', 'cls'], image, '--out-dir', str(out)])
    assert os.listdir(out / 'vis')


@pytest.mark.parametrize('trained', [('groupmixformer', task) for task in DATA] + [('flatten', 'det')],
                         indirect=True, ids='-'.join)
def test_demo_pictures(trained, demo_root, tmp_path, in_repo):
    """What tools/demo.py draws, from a briefly trained checkpoint: each picture exists, has the
    expected size and is not blank."""
    from PIL import Image

    from groupmix_backbones.visualization.results import plot_training_curves, summary_sheet
    (family, task), work_dir, checkpoint, _ = trained
    config = DEMOS[family, task]

    def assert_drawn(path, size=None):
        with Image.open(path) as image:
            pixels = np.asarray(image.convert('RGB'), np.float32)
        assert size is None or pixels.shape[:2] == size, (path, pixels.shape)
        assert pixels.std() > 10, f'{path} is blank'

    if task == 'cls':
        grid = demo_tool.draw_classification(config, checkpoint, demo_root,
                                             str(tmp_path / 'classification.png'), per_class=2)
        assert_drawn(grid)
    else:  # tools/test.py --show-dir: ground truth beside prediction, at the image's size
        options = [f'{k}={v}' for k, v in short_run_options(task, demo_root).items()]
        load_tool('tools/test.py').main([config, checkpoint, '--work-dir', str(tmp_path / 'work'),
                                         '--show-dir', str(tmp_path / 'shown'),
                                         '--cfg-options', *options])
        drawn = sorted(glob.glob(str(tmp_path / 'shown' / '**' / '*.*'), recursive=True))
        drawn = [path for path in drawn if path.endswith(('.jpg', '.png'))]
        images = sorted(glob.glob(osp.join(demo_root, DATA[task], '**', 'val*', '*.jpg'),
                                  recursive=True))
        assert len(drawn) == len(images) == 4
        side = 128 if task == 'det' else 64  # conftest's demo sizes
        for path in drawn:
            assert_drawn(path, (side, 2 * side))
        maps = demo_tool.draw_backbone(config, checkpoint, images[0], str(tmp_path / 'maps'))
        assert_drawn(maps)  # GroupMixFormer's and FLatten's visualizers (the unified family has none)
    curves = plot_training_curves(
        {'run': (str(work_dir), METRIC[task])}, str(tmp_path / 'curves.png'))
    assert_drawn(curves, (260, 900))
    summary = summary_sheet([('curves', curves)] * 2, str(tmp_path / 'summary.png'), max_pixels=600)
    assert_drawn(summary)
    assert Image.open(summary).size[0] == 600


@pytest.mark.parametrize('family', demo_tool.FAMILIES)
def test_detector_roi_features_see_the_maps_the_backbone_returns(family):
    """mmcv's compiled RoIAlign indexes its input as contiguous NCHW (CPU and CUDA) and reads a
    channels_last map wrongly without an error; the backbones return contiguous maps, so the RoI
    features of a detector are those of its FPN maps however they are laid out."""
    from mmcv.ops import roi_align
    cfg = Config.fromfile(osp.join(REPO, DEMOS[family, 'det']))
    cfg.model.backbone.init_cfg = None
    replace_sync_bn(cfg.model)
    detector = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        maps = detector.neck(detector.backbone(torch.randn(2, 3, 67, 91)))
        rois = torch.tensor([[0, 3.5, 4., 40., 50.], [1, 20., 9., 88., 60.]])
        extractor = detector.roi_head.bbox_roi_extractor
        assert torch.equal(extractor(maps, rois),
                           extractor(tuple(m.contiguous() for m in maps), rois))
        # upstream: still wrong for channels_last (once fixed, the contiguous copies may go)
        channels_last = maps[0].contiguous(memory_format=torch.channels_last)
        assert not torch.allclose(roi_align(channels_last, rois, 7, 0.25, 2, 'avg', True),
                                  roi_align(maps[0], rois, 7, 0.25, 2, 'avg', True))
