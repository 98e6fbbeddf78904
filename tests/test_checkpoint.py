"""What the safe loader reads: mmengine checkpoint contents (numpy values, HistoryBuffers) in both
torch formats and under numpy 1 names; official training checkpoints (yacs CfgNode, argparse
Namespace); config text dropped; corrupt files told from unsafe ones.
Attacks: tests/test_checkpoint_safety.py."""
import argparse
import contextlib
import io
import logging
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.runner.checkpoint import _load_checkpoint

from timm.scheduler import CosineLRScheduler

from groupmix_backbones.converters import FLATTEN, SGFORMER
from groupmix_backbones import safe_checkpoint as checkpoint
from groupmix_backbones.safe_checkpoint import (CorruptCheckpointError, UnsafeCheckpointError,
                                                add_safe_globals, safe_torch_load)


def mmengine_like_checkpoint():
    buffer = HistoryBuffer(max_length=3)
    for value in (0.5, 1.5, 2.5, 3.5):
        buffer.update(value)
    shared = np.arange(6, dtype=np.float32).reshape(2, 3)
    return {
        'meta': {'epoch': 3, 'seed': np.int64(7), 'lr': np.float64(1e-3), 'half': np.float16(0.5),
                 'flag': np.bool_(True), 'z': np.complex64(1 + 2j), 'name': np.str_('ab'),
                 'fortran': np.asfortranarray(np.arange(6).reshape(2, 3)),
                 'big_endian': np.arange(3, dtype='>i4'), 'strings': np.array(['a', 'bcd']),
                 'bytes': np.array([b'x', b'yz']), 'scalar_array': np.array(2.5),
                 'empty': np.zeros(0),
                 'shared': [shared, shared], 'dataset_meta': {'classes': ('a', 'b')}},
        'message_hub': {'log_scalars': {'train/loss': buffer}, 'runtime_info': {'iter': 10},
                        'resumed_keys': {'train/loss': True}},
        'state_dict': {'w': torch.ones(2)},
        'optimizer': {'state': {0: {'step': torch.tensor(3.)}}, 'param_groups': [{'lr': 0.1}]},
    }


def assert_same(loaded, saved):
    """Equal values of the same types, recursively (HistoryBuffers by their data)."""
    assert type(loaded) is type(saved)
    if isinstance(saved, dict):
        assert loaded.keys() == saved.keys()
        for key in saved:
            assert_same(loaded[key], saved[key])
    elif isinstance(saved, (list, tuple)):
        assert len(loaded) == len(saved)
        for a, b in zip(loaded, saved):
            assert_same(a, b)
    elif isinstance(saved, HistoryBuffer):
        assert_same(loaded.data, saved.data)
        assert loaded.max_length == saved.max_length
    elif isinstance(saved, torch.Tensor):
        assert torch.equal(loaded, saved)
    elif isinstance(saved, np.ndarray):
        assert loaded.dtype == saved.dtype and loaded.flags.f_contiguous == saved.flags.f_contiguous
        np.testing.assert_array_equal(loaded, saved)
    else:
        assert loaded == saved


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy format'])
def test_mmengine_checkpoint_contents_load(tmp_path, legacy):
    saved = mmengine_like_checkpoint()
    path = tmp_path / 'ok.pth'
    torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert_same(loaded, saved)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == 2.5 and buffer.current() == 3.5 and buffer.statistics('max') == 3.5
    assert loaded['meta']['shared'][0] is loaded['meta']['shared'][1]  # shared stays shared
    assert loaded['meta']['fortran'].flags.writeable


def test_numpy1_names_load(tmp_path):
    """Checkpoints written under numpy 1 name numpy.core.multiarray instead of numpy._core."""
    array = np.arange(4.)
    data = io.BytesIO()
    pickle.dump({'a': array, 's': np.int64(3)}, data, protocol=2)
    numpy1 = data.getvalue().replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert numpy1 != data.getvalue()
    with zipfile.ZipFile(tmp_path / 'numpy1.pth', 'w') as archive:
        archive.writestr('archive/data.pkl', numpy1)
        archive.writestr('archive/version', '3\n')
    loaded = safe_torch_load(tmp_path / 'numpy1.pth')
    np.testing.assert_array_equal(loaded['a'], array)
    assert loaded['s'] == 3


def test_pickled_code_is_refused_unexecuted(tmp_path):
    marker, path = tmp_path / 'pwned', tmp_path / 'evil.pth'

    class Exploit:

        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': Exploit()}, path)
    with pytest.raises(UnsafeCheckpointError, match='GLOBAL posix.system') as error:
        _load_checkpoint(str(path), map_location='cpu')
    assert isinstance(error.value, pickle.UnpicklingError) and str(path) in str(error.value)
    assert 'executed' not in str(error.value)  # checked: what the pickle asks for, not more
    assert not marker.exists()


class CfgNode(dict):
    """Pickles as yacs.config.CfgNode (yacs 0.1.8, not installed here) does: a dict subclass with
    no __reduce__ or __getstate__, so pickle writes NEWOBJ, SETITEMS of its items, then BUILD of
    the attributes yacs's __init__ sets."""

    def __init__(self, items=(), new_allowed=False):
        super().__init__(items)
        vars(self).update({'__immutable__': False, '__deprecated_keys__': set(),
                           '__renamed_keys__': {}, '__new_allowed__': new_allowed})


CfgNode.__module__ = 'yacs.config'


@contextlib.contextmanager
def yacs_importable():
    """pickle writes a class by its import name, checking that the name imports to the class:
    while saving, ``yacs.config.CfgNode`` is the class above (the loader never imports it)."""
    config = types.ModuleType('yacs.config')
    config.CfgNode = CfgNode
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, 'yacs', types.ModuleType('yacs'))
        patch.setitem(sys.modules, 'yacs.config', config)
        yield


def swin_config():
    """A Swin-codebase config (FLatten, GroupMixFormer): nested CfgNodes of plain values."""
    model = CfgNode({'TYPE': 'flatten_pvt', 'DROP_PATH_RATE': 0.1, 'PVT': CfgNode(
        {'EMBED_DIMS': [64, 128, 320, 512], 'SR_RATIOS': (8, 4, 2, 1)})})
    return CfgNode({'MODEL': model, 'DATA': CfgNode({'IMG_SIZE': 224, 'PATH': None},
                                                     new_allowed=True), 'AMP_OPT_LEVEL': 'O1'})


def training_extras():
    """A real AdamW state after a step, and the state of timm's cosine scheduler (FLatten's)."""
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    weight.sum().backward()
    optimizer.step()
    scheduler = CosineLRScheduler(optimizer, t_initial=300, warmup_t=20, warmup_lr_init=1e-6)
    return {'optimizer': optimizer.state_dict(), 'lr_scheduler': scheduler.state_dict()}


def test_training_configurations_load_as_dicts(tmp_path):
    """Swin codebases save their yacs config, timm-style scripts their argparse args."""
    args = argparse.Namespace(model='sgformer_s', lr=1e-3, input_size=(3, 224, 224), amp=True,
                              resume='', aa='rand-m9-mstd0.5-inc1', drop_path=None)
    saved = {'model': {'w': torch.ones(2)}, 'config': swin_config(), 'args': args, 'epoch': 3,
             'empty': argparse.Namespace(), **training_extras()}
    with yacs_importable():
        torch.save(saved, tmp_path / 'official.pth')
    loaded = safe_torch_load(tmp_path / 'official.pth')
    assert_same(loaded['config'], {
        'MODEL': {'TYPE': 'flatten_pvt', 'DROP_PATH_RATE': 0.1,
                  'PVT': {'EMBED_DIMS': [64, 128, 320, 512], 'SR_RATIOS': (8, 4, 2, 1)}},
        'DATA': {'IMG_SIZE': 224, 'PATH': None}, 'AMP_OPT_LEVEL': 'O1'})
    assert_same(loaded['args'], vars(args))
    assert loaded['empty'] == {} and type(loaded['empty']) is dict
    assert_same(loaded['optimizer'], saved['optimizer'])
    assert_same(loaded['lr_scheduler'], saved['lr_scheduler'])
    assert_same(loaded['model'], saved['model'])


def test_shared_and_cyclic_configurations(tmp_path):
    shared = CfgNode({'SIZE': 224})
    config = CfgNode({'TRAIN': shared, 'TEST': shared})
    config['SELF'] = config
    args = argparse.Namespace(config=config)
    args.me = args
    with yacs_importable():
        torch.save({'config': config, 'args': args}, tmp_path / 'cyclic.pth')
    loaded = safe_torch_load(tmp_path / 'cyclic.pth')
    assert loaded['config']['TRAIN'] is loaded['config']['TEST'] == {'SIZE': 224}
    assert loaded['config']['SELF'] is loaded['config'] is loaded['args']['config']
    assert loaded['args']['me'] is loaded['args'] and type(loaded['args']) is dict


def test_official_training_checkpoints_convert(tmp_path):
    """FLatten's save_checkpoint (Swin codebase) and SG-Former's CheckpointSaver (timm) layouts."""
    flatten = {'model': {'pos_embed1': torch.zeros(1, 4, 8)}, 'max_accuracy': 81.5,
               'epoch': 300, 'config': swin_config(), **training_extras()}
    sgformer = {'epoch': 299, 'arch': 'sgformer_s',
                'state_dict': {'patch_embed1.conv.0.c.weight': torch.zeros(2, 3, 3, 3)},
                'optimizer': training_extras()['optimizer'], 'version': 2,
                'args': argparse.Namespace(model='sgformer_s', model_ema=True),
                'amp_scaler': {'scale': 65536.0, 'growth_factor': 2.0, '_growth_tracker': 0},
                'state_dict_ema': {'patch_embed1.conv.0.c.weight': torch.ones(2, 3, 3, 3)},
                'metric': 83.2}
    for fmt, official, key in ((FLATTEN, flatten, 'model'), (SGFORMER, sgformer, 'state_dict')):
        src, dst = tmp_path / f'{fmt.family}.pth', tmp_path / f'{fmt.family}-ours.pth'
        with yacs_importable():
            torch.save(official, src)
        fmt.main([str(src), str(dst)])
        converted = torch.load(dst, weights_only=True)['state_dict']
        assert len(converted) == 1
        assert_same(next(iter(converted.values())), next(iter(official[key].values())))


class Meta:
    """A user's metadata type."""


def test_add_safe_globals_allows_a_trusted_type(tmp_path):
    torch.save({'meta': Meta()}, tmp_path / 'meta.pth')
    with pytest.raises(UnsafeCheckpointError, match='test_checkpoint.Meta'):
        safe_torch_load(tmp_path / 'meta.pth')
    add_safe_globals(Meta)
    try:
        assert type(safe_torch_load(tmp_path / 'meta.pth')['meta']) is Meta
    finally:
        checkpoint.SAFE_GLOBALS.remove(Meta)


def test_config_text_is_dropped_and_logged(tmp_path):
    """mmengine would parse (run) meta.config on resume and the cfg copies in inferencers."""
    saved = mmengine_like_checkpoint()
    saved['meta'].update(config='import os', cfg='x = 1')
    saved['message_hub']['runtime_info']['cfg'] = 'x = 1'
    torch.save(saved, tmp_path / 'cfg.pth')
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        loaded = safe_torch_load(tmp_path / 'cfg.pth')
    finally:
        logger.removeHandler(handler)
    assert {'config', 'cfg'}.isdisjoint(loaded['meta']) and loaded['meta']['epoch'] == 3
    assert loaded['message_hub']['runtime_info'] == {'iter': 10}
    warning = next(record.getMessage() for record in records if record.levelno == logging.WARNING)
    assert 'meta.config, meta.cfg, message_hub.runtime_info.cfg' in warning
    assert 'never parsed' in warning


def test_corrupt_files_are_told_apart(tmp_path):
    """Empty, not a checkpoint, truncated: CorruptCheckpointError saying which, never 'unsafe'."""
    torch.save({'w': torch.randn(1000)}, tmp_path / 'good.pth')
    torch.save({'w': torch.randn(1000)}, tmp_path / 'legacy.pth',
               _use_new_zipfile_serialization=False)
    whole, legacy = (open(tmp_path / name, 'rb').read() for name in ('good.pth', 'legacy.pth'))
    with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as archive:
        archive.writestr('notes/readme.txt', 'not a checkpoint')
    files = {
        'empty.pth': (b'', 'is empty'),
        'config.py': (b'model = dict()\n', 'is not a PyTorch checkpoint'),
        'noise.pth': (bytes(range(7, 200)), 'is not a PyTorch checkpoint'),
        'truncated.pth': (whole[:len(whole) // 2], 'truncated or damaged'),
        'truncated_legacy.pth': (legacy[:len(legacy) // 2], 'truncated or damaged'),
        'cut_legacy.pth': (legacy[:40], 'ends early'),
        'garbled.pth': (b'\x80\x02' + bytes([0xfe] * 10), 'could not be unpickled'),
        'other.zip': (None, 'not a torch.save archive'),
    }
    for name, (content, says) in files.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(CorruptCheckpointError, match=says) as error:
            _load_checkpoint(str(tmp_path / name), map_location='cpu')
        assert not isinstance(error.value, UnsafeCheckpointError)
        assert 'unsafe' not in str(error.value).lower() and name in str(error.value)
