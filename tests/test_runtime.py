"""What the tools and the package do around a Runner: the data each command checks, the engine
hooks every run gets, and the three libraries' inference APIs sharing one process."""
import itertools
import os
import os.path as osp
import shutil
import subprocess
import sys

import mmcv
import pytest
from mmdet.apis import DetInferencer, inference_detector, init_detector
from mmdet.registry import HOOKS as DET_HOOKS
from mmengine.config import Config
from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.registry import HOOKS as SEG_HOOKS

from conftest import REPO, load_tool
from groupmix_backbones.engine import ResumableCheckpointHook
from groupmix_backbones.runtime import prepare_cfg
from test_tasks import DATA, DEMOS, short_run_options

SPLITS = {  # task: {split: what of the demo data only that split reads}
    'cls': {'train': ['meta/train.txt', 'train'], 'val': ['meta/val.txt', 'val']},
    'det': {'train': ['annotations/instances_train2017.json', 'train2017'],
            'val': ['annotations/instances_val2017.json', 'val2017']},
    'seg': {'train': ['images/training', 'annotations/training'],
            'val': ['images/validation', 'annotations/validation']},
}


def demo_data_without(split, task, demo_root, root):
    """A copy of the demo data of ``task`` under ``root`` without ``split``; returns ``root``."""
    copy = osp.join(root, DATA[task])
    shutil.copytree(osp.join(demo_root, DATA[task]), copy)
    for path in SPLITS[task][split]:
        target = osp.join(copy, path)
        shutil.rmtree(target) if osp.isdir(target) else os.remove(target)
    return str(root)


def demo_cfg(task, data_root, validate=True):
    config = osp.join(REPO, DEMOS['groupmixformer', task])
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(short_run_options(task, data_root))
    if not validate:  # what tools/train.py --no-validate does
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg, config


@pytest.mark.parametrize('task', SPLITS)
def test_each_command_checks_only_the_data_it_reads(task, demo_root, tmp_path):
    without_train = demo_data_without('train', task, demo_root, tmp_path / 'no_train')
    prepare_cfg(*demo_cfg(task, without_train), command='test')
    with pytest.raises(FileNotFoundError, match=f'train_dataloader: .*{SPLITS[task]["train"][0]}'):
        prepare_cfg(*demo_cfg(task, without_train), command='train')

    without_val = demo_data_without('val', task, demo_root, tmp_path / 'no_val')
    prepare_cfg(*demo_cfg(task, without_val, validate=False), command='train')
    with pytest.raises(FileNotFoundError, match='val_dataloader: .*--no-validate'):
        prepare_cfg(*demo_cfg(task, without_val), command='train')
    with pytest.raises(FileNotFoundError, match='test_dataloader'):  # the demos test on val
        prepare_cfg(*demo_cfg(task, without_val), command='test')


def test_train_tool_without_validation_needs_no_val_split(demo_root, tmp_path, in_repo):
    data_root = demo_data_without('val', 'cls', demo_root, tmp_path / 'data')
    options = [f'{k}={v}' for k, v in short_run_options('cls', data_root).items()]
    train = load_tool('tools/train.py')
    argv = [DEMOS['groupmixformer', 'cls'], '--work-dir', str(tmp_path / 'work'),
            '--cfg-options', *options]
    with pytest.raises(FileNotFoundError, match='val_dataloader'):
        train.main(argv)
    train.main(argv + ['--no-validate'])
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')


def test_train_tool_compiles_the_training_step(demo_root, tmp_path, in_repo):
    """``--compile BACKEND`` sets mmengine's ``compile`` option: the Runner trains through
    torch.compile (backend eager here: dynamo's graphs run as they are; tests/test_compile.py
    checks the backbones through AOTAutograd)."""
    import torch
    options = [f'{k}={v}' for k, v in short_run_options('cls', demo_root).items()]
    options.append('train_dataloader.dataset.indices=4')  # one step: one graph to trace
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    try:
        load_tool('tools/train.py').main(
            [DEMOS['groupmixformer', 'cls'], '--work-dir', str(tmp_path), '--no-validate',
             '--compile', 'eager', '--cfg-options', *options])
        assert torch._dynamo.utils.counters['stats']['unique_graphs'] >= 1
    finally:
        torch._dynamo.reset()
    assert osp.isfile(tmp_path / 'epoch_1.pth')


def test_every_scope_finds_the_engine_hooks_and_runs_use_them(demo_root):
    for hooks in (PRETRAIN_HOOKS, DET_HOOKS, SEG_HOOKS):
        assert hooks.get('ResumableCheckpointHook') is ResumableCheckpointHook
    for family, task in DEMOS:
        cfg = prepare_cfg(*demo_cfg(task, demo_root))
        assert cfg.default_hooks.checkpoint.type == 'ResumableCheckpointHook', (family, task)


def run_inferencer(task, image):
    """Build the library's own inferencer for the groupmixformer demo of ``task`` (random weights)
    and run it on ``image``."""
    config = osp.join(REPO, DEMOS['groupmixformer', task])
    if task == 'cls':
        result = ImageClassificationInferencer(config, pretrained=False, device='cpu')(image)
        assert 0 <= result[0]['pred_label'] < 6
    elif task == 'det':
        result = DetInferencer(config, device='cpu', show_progress=False)(image)
        assert 'bboxes' in result['predictions'][0]
    else:
        result = MMSegInferencer(config, device='cpu')(image)
        assert result['predictions'].shape == mmcv.imread(image).shape[:2]


@pytest.mark.parametrize('order', list(itertools.permutations(('cls', 'det', 'seg'))),
                         ids='-'.join)
def test_inference_apis_share_a_process_in_any_order(order, demo_root):
    """Each mmdet/mmseg API leaves its default scope set for the whole process (mmengine#1105)."""
    folder = osp.join(demo_root, 'coco/val2017')
    image = osp.join(folder, sorted(os.listdir(folder))[0])
    detector = init_detector(osp.join(REPO, DEMOS['groupmixformer', 'det']), device='cpu')
    run_inferencer(order[0], image)
    segmentor = init_model(osp.join(REPO, DEMOS['groupmixformer', 'seg']), device='cpu')
    run_inferencer(order[1], image)
    assert inference_detector(detector, image).pred_instances.bboxes.shape[1] == 4
    run_inferencer(order[2], image)
    assert inference_model(segmentor, image).pred_sem_seg.shape == mmcv.imread(image).shape[:2]


MMAPPED_GROWTH = """
import ctypes, sys
from groupmix_backbones.policy.allocator import keep_freed_cpu_memory
if sys.argv[1] == 'tuned':
    assert keep_freed_cpu_memory()
class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]
libc = ctypes.CDLL('libc.so.6')
libc.mallinfo2.restype, libc.malloc.restype = Info, ctypes.c_void_p
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_tools_keep_large_blocks_on_the_heap():
    """glibc maps each block over 32 MiB on its own (unmapped when freed, page-faulted again on
    reuse); with the tools' setting a 64 MiB block comes from the heap, reused after a free."""
    growth = {mode: int(subprocess.run([sys.executable, '-c', MMAPPED_GROWTH, mode], cwd=REPO,
                                       capture_output=True, text=True, check=True).stdout)
              for mode in ('default', 'tuned')}
    assert growth['default'] >= 64 << 20 and growth['tuned'] == 0


ENDING = """
import atexit
import sys
import torch.distributed as dist
from groupmix_backbones.runtime import close_process_group, gloo_threads_alive, run_and_exit

HELD = []

def run(outcome):
    dist.init_process_group('gloo', init_method=sys.argv[2], rank=0, world_size=1)
    HELD.append(dist.group.WORLD)  # as torch._dynamo holds it: destroying it joins no thread
    close_process_group()
    print('gloo threads alive:', gloo_threads_alive(), end=' ')  # left in the buffer
    if outcome == 'preempted':
        sys.exit(75)
    if outcome == 'error':
        raise ValueError('broken data')

atexit.register(print, 'finalized')
run_and_exit(run, sys.argv[1])
"""


@pytest.mark.skipif(not osp.isdir('/proc/self/task'), reason='thread names from /proc')
@pytest.mark.parametrize('outcome,code', [('finished', 0), ('preempted', 75), ('error', 1)])
def test_tools_exit_without_finalizing_while_gloo_threads_run(outcome, code, tmp_path):
    """tools/train.py and tools/test.py end through run_and_exit: where destroying the process
    group left gloo's threads running, the process exits without Python's finalization (which
    aborted 12 of 30 contended runs, tools/analysis_tools/gloo_shutdown.py) with the tool's
    exit code, its output flushed and an error's traceback shown (no atexit handler runs)."""
    ran = subprocess.run([sys.executable, '-c', ENDING, outcome, f'file://{tmp_path}/store'],
                         cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=''))
    assert ran.returncode == code, ran.stderr[-3000:]
    assert ran.stdout == 'gloo threads alive: True '
    assert ('ValueError: broken data' in ran.stderr) == (outcome == 'error')
