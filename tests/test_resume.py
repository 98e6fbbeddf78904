"""Nothing lost, nothing silent: a checkpoint survives a kill mid-save, and a resumed run logs the
same losses as an uninterrupted one (epoch-based classification, iteration-based segmentation)."""
import errno
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import CheckpointLoader, Runner

from conftest import REPO
from groupmix_backbones.engine import ResumableCheckpointHook
from groupmix_backbones.engine.checkpoint_hook import CheckpointWriteError
from groupmix_backbones.engine.checksum import SUFFIX
from test_tasks import DEMOS, short_cfg, short_run_options

CLS, SEG = ('groupmixformer', 'cls'), ('groupmixformer', 'seg')

# Test-only: tools/train.py in a process that SIGKILLs itself once half of the bytes of a file
# whose name starts with argv[1] are on disk (a kill while a checkpoint is being written).
KILLED_WHILE_SAVING = '''
import os, runpy, signal, sys
from mmengine.fileio import LocalBackend
put, prefix = LocalBackend.put, sys.argv[1]
def put_and_die(self, obj, filepath):
    if os.path.basename(str(filepath)).startswith(prefix):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    put(self, obj, filepath)
LocalBackend.put = put_and_die
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def train(demo, demo_root, work_dir, **options):
    """A short real run of a demo config; returns the finished Runner."""
    cfg = short_cfg(demo, demo_root, work_dir)
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def assert_resumed_exactly(resumed, uninterrupted):
    """``resumed`` trained as far as ``uninterrupted`` and computed the same losses at every
    iteration: the message hubs' histories, which the logs average (a resumed run's history up to
    its checkpoint is restored from it)."""
    def losses(runner):
        return {name: history.data[0].tolist()
                for name, history in runner.message_hub.log_scalars.items()
                if name.startswith('train/') and 'loss' in name}
    assert resumed.iter == uninterrupted.iter == len(losses(resumed)['train/loss'])
    assert losses(resumed) == losses(uninterrupted)


@pytest.fixture(scope='module')
def uninterrupted_cls(demo_root, tmp_path_factory):
    """Two epochs of the classification demo, validated after each, both checkpoints kept."""
    return train(CLS, demo_root, tmp_path_factory.mktemp('uninterrupted'),
                 **{'train_cfg.max_epochs': 2, 'default_hooks.checkpoint.max_keep_ckpts': 2})


def test_a_kill_while_saving_loses_nothing_and_resumes_exactly(uninterrupted_cls, demo_root,
                                                               tmp_path):
    options = dict(short_run_options('cls', demo_root), **{'train_cfg.max_epochs': 2})
    killed = subprocess.run(
        [sys.executable, '-c', KILLED_WHILE_SAVING, 'epoch_2.pth', 'tools/train.py', DEMOS[CLS],
         '--work-dir', str(tmp_path), '--cfg-options', *[f'{k}={v}' for k, v in options.items()]],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES=''),
        capture_output=True, text=True, timeout=900)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert osp.getsize(tmp_path / 'epoch_2.pth.incomplete') > 0  # it died writing epoch 2 ...
    assert not osp.exists(tmp_path / 'epoch_2.pth')
    last = open(tmp_path / 'last_checkpoint').read()  # ... and epoch 1, max_keep_ckpts=1, is whole
    assert last == str(tmp_path / 'epoch_1.pth')
    assert CheckpointLoader.load_checkpoint(last)['meta']['epoch'] == 1

    resumed = train(CLS, demo_root, tmp_path, resume=True, **{'train_cfg.max_epochs': 2})
    assert resumed.epoch == 2
    assert not osp.exists(tmp_path / 'epoch_2.pth.incomplete')
    assert open(tmp_path / 'last_checkpoint').read() == str(tmp_path / 'epoch_2.pth')
    assert not osp.exists(tmp_path / 'epoch_1.pth')
    assert_resumed_exactly(resumed, uninterrupted_cls)


def test_resume_takes_the_checkpoint_seed(uninterrupted_cls, demo_root, tmp_path):
    """With randomness.seed=None every run draws a seed; resuming continues with the checkpoint's
    (mmengine restores it only after building the sampler with the new one)."""
    resumed = train(CLS, demo_root, tmp_path, resume=True, randomness=dict(seed=None),
                    load_from=osp.join(uninterrupted_cls.work_dir, 'epoch_1.pth'),
                    **{'train_cfg.max_epochs': 2})
    assert resumed.seed == uninterrupted_cls.seed
    assert_resumed_exactly(resumed, uninterrupted_cls)


def test_resume_never_parses_checkpoint_text(uninterrupted_cls, demo_root, tmp_path):
    """mmengine's resume would execute a checkpoint's meta['config'] (Config.fromstring)."""
    checkpoint = CheckpointLoader.load_checkpoint(
        osp.join(uninterrupted_cls.work_dir, 'epoch_1.pth'))
    marker = tmp_path / 'executed'
    checkpoint['meta']['config'] = f'gpu_ids = [open({str(marker)!r}, "w").write("pwned")]\n'
    torch.save(checkpoint, tmp_path / 'crafted.pth')
    runner = train(CLS, demo_root, tmp_path, resume=True, load_from=str(tmp_path / 'crafted.pth'))
    assert runner.epoch == 1  # resumed (at its end: nothing left to train)
    assert not marker.exists()


def test_iteration_based_resume_is_exact(demo_root, tmp_path):
    """The segmentation demo: 4 iterations with a checkpoint and validation at 2, against 2 more
    iterations resumed from that checkpoint (mmengine advances the data iterator by loading the
    skipped batches, which draws augmentation randomness in the main process)."""
    options = {'train_cfg.max_iters': 4, 'train_dataloader.batch_size': 2,
               'default_hooks.checkpoint.max_keep_ckpts': 2}
    uninterrupted = train(SEG, demo_root, tmp_path / 'uninterrupted', **options)
    resumed = train(SEG, demo_root, tmp_path / 'resumed', resume=True,
                    load_from=str(tmp_path / 'uninterrupted' / 'iter_2.pth'), **options)
    assert_resumed_exactly(resumed, uninterrupted)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs mounted on ``tmp_path / 'disk'`` (we run as root here); yields (folder, resize),
    where ``resize(free_bytes)`` leaves that much room above what is in use."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip('mounting a small tmpfs needs root')
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr.strip()}')

    def resize(free_bytes):
        size_kib = (shutil.disk_usage(disk).used + free_bytes) // 1024 + 1
        subprocess.run(['mount', '-o', f'remount,size={size_kib}k', str(disk)], check=True)

    try:
        yield disk, resize
    finally:
        subprocess.run(['umount', '--lazy', str(disk)], check=True)  # log files stay open


def test_a_full_disk_stops_the_run_and_keeps_the_last_checkpoint(uninterrupted_cls, demo_root,
                                                                  small_disk):
    """The disk fills up while epoch 2 is written (room for half a checkpoint): the run stops with
    an error naming the file, the cause and the checkpoint kept; nothing partial stays behind;
    on a disk with room, --resume continues from epoch 1 and ends as the uninterrupted run."""
    disk, resize = small_disk
    train(CLS, demo_root, disk, **{'train_cfg.max_epochs': 1})
    first = str(disk / 'epoch_1.pth')
    resize(free_bytes=osp.getsize(first) // 2)
    with pytest.raises(CheckpointWriteError,
                       match=rf'epoch_2\.pth \(No space left on device\)\. The previous checkpoint '
                             rf'{re.escape(first)} and .*last_checkpoint are unchanged'):
        train(CLS, demo_root, disk, resume=True, **{'train_cfg.max_epochs': 2})
    assert sorted(f for f in os.listdir(disk) if 'epoch' in f or 'checkpoint' in f) == [
        'epoch_1.pth', 'epoch_1.pth.sha256', 'last_checkpoint']
    assert open(disk / 'last_checkpoint').read() == first
    assert CheckpointLoader.load_checkpoint(first)['meta']['epoch'] == 1

    resize(free_bytes=4 * osp.getsize(first))
    resumed = train(CLS, demo_root, disk, resume=True, **{'train_cfg.max_epochs': 2})
    assert open(disk / 'last_checkpoint').read() == str(disk / 'epoch_2.pth')
    assert_resumed_exactly(resumed, uninterrupted_cls)


def checkpoints_in(folder):
    """The checkpoints in ``folder``, each checked to have its checksum file beside it."""
    files = sorted(os.listdir(folder))
    checkpoints = [f for f in files if not f.endswith(SUFFIX)]
    assert files == sorted(checkpoints + [f + SUFFIX for f in checkpoints]), files
    return checkpoints


class SavingRunner:
    """What :class:`ResumableCheckpointHook` needs of a Runner to save a best checkpoint; records
    the folder's files at each save, and fails like a full disk (half a file, then ENOSPC) when
    ``disk_full``."""

    def __init__(self, work_dir):
        self.work_dir, self.epoch, self.iter = str(work_dir), 0, 0
        self.message_hub = MessageHub.get_instance('test_save_best')
        self.logger = MMLogger.get_current_instance()
        self.disk_full, self.files_while_saving = False, []

    def save_checkpoint(self, out_dir, filename, **kwargs):
        self.files_while_saving.append(checkpoints_in(out_dir))
        with open(osp.join(out_dir, filename), 'wb') as f:
            f.write(b'half')
            if self.disk_full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            f.write(b' and the rest')


def test_save_best_keeps_the_old_best_until_the_new_one_is_in_place(tmp_path):
    runner = SavingRunner(tmp_path)
    hook = ResumableCheckpointHook(interval=1, save_best='acc', rule='greater')
    hook.out_dir, hook.file_backend = str(tmp_path), LocalBackend()

    def validate(epoch, acc):
        runner.epoch = epoch
        hook.after_val_epoch(runner, {'acc': acc})
        return checkpoints_in(tmp_path)

    assert validate(1, acc=0.5) == ['best_acc_epoch_1.pth']
    assert validate(2, acc=0.7) == ['best_acc_epoch_2.pth']
    assert runner.files_while_saving[-1] == ['best_acc_epoch_1.pth']  # the old one was still there
    assert validate(3, acc=0.6) == ['best_acc_epoch_2.pth']  # not better: nothing written
    runner.disk_full = True
    with pytest.raises(CheckpointWriteError, match=r'best_acc_epoch_4\.pth \(No space left on '
                                                   r'device\)\. The previous best checkpoint'):
        validate(4, acc=0.9)
    assert checkpoints_in(tmp_path) == ['best_acc_epoch_2.pth']
    assert open(tmp_path / 'best_acc_epoch_2.pth', 'rb').read() == b'half and the rest'
    best = str(tmp_path / 'best_acc_epoch_2.pth')
    assert hook.best_ckpt_path == runner.message_hub.get_info('best_ckpt') == best
