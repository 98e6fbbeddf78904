"""Checkpoint safety, tested as an attacker: crafted checkpoints against the safe loader on every
URL scheme we can reach here, and on every path of ours that loads checkpoints. Each attack is
refused with UnsafeCheckpointError (config text: ignored), runs nothing (the marker file its payload
would create stays absent) and changes no global state; each message names the culprit and the file
and claims no more than was checked. A subprocess first shows that the payloads are live."""
import argparse
import builtins
import collections
import copy
import copyreg
import functools
import http.server
import io
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest
import torch
import torch._weights_only_unpickler
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner import checkpoint as mmengine_checkpoint

import groupmix_backbones  # noqa: F401
from conftest import REPO
from groupmix_backbones import safe_checkpoint as checkpoint
from groupmix_backbones.safe_checkpoint import UnsafeCheckpointError, load_from_ceph
from test_checkpoint import CfgNode as YacsCfgNode
from test_checkpoint import assert_same, yacs_importable

HistoryBuffer()  # registers the default statistics, as any Runner does, before the snapshots below
NUMPY_RECONSTRUCT, NUMPY_SCALAR = np.arange(1).__reduce__()[0], np.float64(0).__reduce__()[0]
CLS_DEMO = 'mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py'
DET_DEMO = 'mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py'
SEG_DEMO = 'mmseg_cfgs/groupmixformer/upernet_groupmixformer-micro_demo.py'
OVERCLAIMS = ('nothing', 'executed', 'harmless', 'is safe', 'no code')


class Call:
    """Pickles as ``func(*args)`` (REDUCE), then BUILD with ``state`` and SETITEMS ``items``."""

    def __init__(self, func, *args, state=None, items=None):
        self.func, self.args, self.state, self.items = func, args, state, items

    def __reduce__(self):
        return self.func, self.args, self.state, None, iter(self.items) if self.items else None

    def __call__(self):  # pickle takes only callables as a REDUCE's function: Call(Call(...))
        raise TypeError('a payload, never called here')


class New(Call):
    """Pickles as ``cls.__new__(cls, *args)`` (NEWOBJ), then BUILD with ``state``."""

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the object's
        return self.func

    def __reduce__(self):
        return copyreg.__newobj__, (self.func, *self.args), self.state


class CfgNode(dict):
    """Named like yacs's CfgNode, in another module (as other libraries' config nodes are)."""


class PersistentId:
    """Pickles as BINPERSID of ``pid``: torch's unpickler passes ``pid[0]`` to
    ``torch.serialization._maybe_decode_ascii`` and then to its persistent_load."""

    def __init__(self, pid):
        self.pid = pid


class _Pickler(pickle.Pickler):

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, PersistentId) else None


def python_code(marker):
    return f'open({str(marker)!r}, "w").close()'


def attacks(marker):
    """name -> (payload, text the refusal must name). Code-running payloads create ``marker``."""
    shell, code = f'touch {marker}', python_code(marker)
    layout = torch.serialization._get_layout  # allowlisted by torch: a way into torch.serialization
    builtins_module = Call(getattr, getattr, '__self__')
    exec_function = Call(getattr, builtins_module, 'exec')
    serialization_globals = Call(getattr, layout, '__globals__',
                                 items=[('_maybe_decode_ascii', exec_function)])
    histories = {'_log_history': np.zeros(2), '_count_history': np.ones(2), 'max_length': 5}
    rebuild = torch._tensor._rebuild_from_type_v2  # allowlisted by torch; calls its first argument
    return {
        'os.system': (Call(os.system, shell), 'system'),
        'eval': (Call(eval, code), 'eval'),
        'exec': (Call(exec, code), 'exec'),
        'subprocess.Popen': (Call(subprocess.Popen, ['touch', str(marker)]), 'Popen'),
        'functools.partial': (Call(Call(functools.partial, os.system, shell)), 'functools.partial'),
        'nested torch.load(weights_only=False)': (
            Call(torch.storage._load_from_bytes, evil_bytes(marker)), '_load_from_bytes'),
        'nested torch.load': (Call(torch.load, f'{marker}.pth'), 'load'),
        'getattr to __globals__': (Call(getattr, layout, '__globals__'), '__globals__'),
        'getattr to __builtins__': (Call(getattr, layout, '__builtins__'), '__builtins__'),
        'getattr to builtins.exec': (Call(exec_function, code), '__self__'),
        'getattr chain from a HistoryBuffer statistic': (
            Call(getattr, Call(getattr, HistoryBuffer, 'mean'), '__globals__'), '__globals__'),
        'getattr to HistoryBuffer.__init__.__globals__': (
            Call(getattr, Call(getattr, HistoryBuffer, '__init__'), '__globals__'), '__init__'),
        '__class__.__base__.__subclasses__()': (
            Call(Call(getattr, Call(getattr, Call(getattr, (), '__class__'), '__base__'),
                      '__subclasses__')), '__class__'),
        'dict.get on module globals': (
            Call(rebuild, Call(getattr, Call(getattr, layout, '__globals__'), 'get'), str,
                 ('__name__', ), {}), '__globals__'),
        'dict.update on module globals': (
            Call(rebuild, Call(getattr, Call(getattr, layout, '__globals__'), 'update'), dict,
                 ({'_maybe_decode_ascii': layout}, ), {}), '__globals__'),
        'setitem on module globals': ({'a': serialization_globals}, '__globals__'),
        'rebind a torch.serialization helper, then a persistent id': (
            {'a': serialization_globals, 'b': PersistentId((code, ))}, '__globals__'),
        'HistoryBuffer.register_statistics': (
            Call(rebuild, Call(getattr, HistoryBuffer, 'register_statistics'), dict, (layout, ),
                 {}), 'register_statistics'),
        'HistoryBuffer state into the class method table': (
            New(HistoryBuffer, state={**histories, 'statistics_methods': {'mean': layout}}),
            'HistoryBuffer'),
        'HistoryBuffer state shadowing a method': (
            New(HistoryBuffer, state={**histories, 'update': layout}), 'HistoryBuffer'),
        'HistoryBuffer with an object history': (
            New(HistoryBuffer, state={**histories, '_log_history': np.array([None, 'a'])}),
            "numpy.dtype('O"),
        'HistoryBuffer called with arguments': (Call(HistoryBuffer, [1.0], [1]), 'HistoryBuffer'),
        'numpy dtype with forged flags (object field from raw bytes)': (
            forged_object_array(), 'V8'),
        'numpy dtype singleton __setstate__ (NEWOBJ)': (
            New(np.dtype, 'f8', False, False, state=(3, '>', None, ('a', ), {
                'a': (np.dtype('f4'), 0)}, 8, 1, 0)), 'numpy.dtype'),
        'numpy object dtype': (Call(np.dtype, 'O', False, True), "numpy.dtype('O"),
        'numpy object scalar': (Call(NUMPY_SCALAR, np.dtype('O'), 'x'), "numpy.dtype('O"),
        'numpy array with short data': (
            Call(NUMPY_RECONSTRUCT, np.ndarray, (0, ), b'b',
                 state=(1, (1000, ), np.dtype('f8'), False, bytes(8))), 'numpy.ndarray'),
        'numpy array of another class': (
            Call(NUMPY_RECONSTRUCT, np.matrix, (0, ), b'b'), 'matrix'),
        'numpy array by NEWOBJ over a buffer': (
            New(np.ndarray, (1, ), 'f8', bytes(8)), 'numpy.ndarray'),
        'bytes(huge)': (Call(bytes, 1 << 40), 'builtins.bytes'),
        'OrderedDict attribute shadowing a method': (
            Call(collections.OrderedDict, state={'copy': layout}), "['copy']"),
        'yacs CfgNode item calling os.system': (
            YacsCfgNode({'MODEL': YacsCfgNode({'NAME': Call(os.system, shell)})}), 'system'),
        'yacs CfgNode attribute calling os.system': (
            New(YacsCfgNode, state={'__immutable__': Call(os.system, shell)}), 'system'),
        'yacs CfgNode attribute shadowing a method': (
            New(YacsCfgNode, state={'copy': layout}),
            "yacs.config.CfgNode with attributes ['copy']"),
        'yacs CfgNode mark overwritten': (
            New(YacsCfgNode, state={'yacs.config.CfgNode': True}), 'OrderedDict with attributes'),
        'yacs CfgNode called with arguments': (
            Call(YacsCfgNode, {'a': layout}), 'a call of yacs.config.CfgNode'),
        'CfgNode of another module': (CfgNode(a=1), f'GLOBAL {__name__}.CfgNode'),
        'argparse.Namespace attribute calling os.system': (
            argparse.Namespace(lr=Call(os.system, shell)), 'system'),
        'argparse.Namespace called with arguments': (
            Call(argparse.Namespace, layout), 'a call of argparse.Namespace'),
        'argparse.Namespace with a non-string attribute name': (
            New(argparse.Namespace, state={1: layout}), 'an argparse.Namespace with state'),
    }


def evil_bytes(marker):
    """A legacy-format checkpoint whose unpickling runs ``touch marker``."""
    buffer = io.BytesIO()
    torch.save(Call(os.system, f'touch {marker}'), buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def forged_object_array():
    """A dtype with an object field whose flags say 'no objects', then an array of it from raw
    (zero) bytes: with numpy's own __setstate__ this makes object pointers out of file bytes."""
    object_dtype = Call(np.dtype, 'O', False, True)  # without numpy's BUILD of it
    dtype = Call(np.dtype, 'V8', False, True,
                 state=(3, '|', None, ('a', ), {'a': (object_dtype, 0)}, 8, 1, 0))
    return Call(NUMPY_RECONSTRUCT, np.ndarray, (0, ), b'b',
                state=(1, (1, ), dtype, False, bytes(8)))


@yacs_importable()  # payloads may hold yacs CfgNodes
def write_checkpoint(path, payload, legacy=False):
    """torch.save ``payload`` as a checkpoint's meta; a hand-written archive when it holds a
    PersistentId (torch.save's pickler would not write our persistent ids)."""
    checkpoint = {'state_dict': {'weight': torch.ones(2)}, 'meta': payload}
    if not any(isinstance(value, PersistentId) for value in _values(payload)):
        torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
        return
    data = io.BytesIO()
    _Pickler(data, protocol=2).dump(payload)
    if legacy:
        with open(path, 'wb') as f:
            for header in (torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
                           {'protocol_version': 1001, 'little_endian': True}):
                pickle.dump(header, f, protocol=2)
            f.write(data.getvalue())
            pickle.dump([], f, protocol=2)
    else:
        with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
            archive.writestr('archive/data.pkl', data.getvalue())
            archive.writestr('archive/byteorder', 'little')
            archive.writestr('archive/version', '3\n')


def _values(payload):
    return payload.values() if type(payload) is dict else [payload]  # New fakes its __class__


def global_state():
    """What a payload could rebind or write into: module globals of torch's loaders, builtins and
    ours, HistoryBuffer's method table, the scheme table and numpy's float64 dtype."""
    modules = (torch.serialization, torch._weights_only_unpickler, builtins, checkpoint,
               mmengine_checkpoint)
    state = {module.__name__: dict(vars(module)) for module in modules}
    state['HistoryBuffer._statistics_methods'] = dict(HistoryBuffer._statistics_methods)
    state['CheckpointLoader._schemes'] = dict(CheckpointLoader._schemes)
    state['numpy float64'] = {'state': np.dtype('f8').__reduce__(), 'str': np.dtype('f8').str}
    return state


def assert_unchanged(before, after):
    for where, values in before.items():
        assert values.keys() == after[where].keys(), where
        changed = [key for key, value in values.items() if not _same(value, after[where][key])]
        assert not changed, f'{where}: {changed} changed'


def _same(a, b):
    plain = (set, frozenset, dict, list, tuple, str, bytes, int, float, bool, type(None))
    return a is b or (type(a) is type(b) and type(a) in plain and a == b)


def assert_refused(error, source, culprit):
    message = str(error.value)
    assert isinstance(error.value, UnsafeCheckpointError)
    assert isinstance(error.value, pickle.UnpicklingError)
    assert str(source) in message and culprit in message, message
    assert not any(claim in message.lower() for claim in OVERCLAIMS), message


# ---------------------------------------------------------------------------------------------
# The payloads are live: unpickled without the allowlist, each code-running one creates its marker.

LIVE = ('os.system', 'eval', 'exec', 'subprocess.Popen', 'functools.partial',
        'nested torch.load(weights_only=False)', 'argparse.Namespace attribute calling os.system',
        'rebind a torch.serialization helper, then a persistent id')  # last: it breaks torch.load


def test_payloads_are_live(tmp_path):
    """torch.load(weights_only=False) in a subprocess runs each code-running payload."""
    paths = {}
    for i, name in enumerate(LIVE):
        marker = tmp_path / f'live{i}'
        write_checkpoint(tmp_path / f'live{i}.pth', attacks(marker)[name][0])
        paths[str(tmp_path / f'live{i}.pth')] = str(marker)
    script = ('import json, os, sys, time, torch\n'
              'for path, marker in json.loads(sys.argv[1]).items():\n'
              '    try:\n'
              '        torch.load(path, weights_only=False)\n'
              '    except Exception:\n'
              '        pass\n'
              '    for _ in range(100):  # subprocess.Popen runs touch in the background\n'
              '        if os.path.exists(marker):\n'
              '            break\n'
              '        time.sleep(0.05)\n'
              '    print(path, os.path.exists(marker))\n')
    result = subprocess.run([sys.executable, '-c', script, json.dumps(paths)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert all(osp.exists(marker) for marker in paths.values()), result.stdout


def test_config_text_payload_is_live(tmp_path):
    """mmengine parses meta['config'] with Config.fromstring(..., '.py'), which runs it."""
    Config.fromstring(python_code(tmp_path / 'marker'), file_format='.py')
    assert (tmp_path / 'marker').exists()


# ---------------------------------------------------------------------------------------------
# Every attack against the core loader, on every scheme we can reach here.

ATTACK_NAMES = list(attacks('marker'))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    timeout = 30  # seconds a connection may stall

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def http_root(tmp_path_factory):
    """A local http server on 127.0.0.1 serving a temporary folder: yields (base URL, folder);
    stopped at the end of the module."""
    root = tmp_path_factory.mktemp('http')
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('no_proxy', '127.0.0.1')
        patch.setenv('NO_PROXY', '127.0.0.1')
        yield f'http://127.0.0.1:{server.server_port}', root
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Fresh torch hub and mmengine home folders for the test."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    os.makedirs(tmp_path / 'mmengine')
    return tmp_path


def place(scheme, name, path, http_root):
    """Put the checkpoint ``path`` where ``scheme`` finds it; returns the name to load it by."""
    base_url, served = http_root
    if scheme.startswith('local'):
        return str(path)
    if scheme == 'http':
        os.replace(path, served / f'{name}.pth')
        return f'{base_url}/{name}.pth'
    home = os.environ['MMENGINE_HOME']
    if scheme in ('open-mmlab (http)', 'open-mmlab (mmengine home)'):
        over_http = scheme.endswith('(http)')
        url = f'{base_url}/{name}.pth' if over_http else f'{name}.pth'
        os.replace(path, osp.join(served if over_http else home, f'{name}.pth'))
        with open(osp.join(home, 'open_mmlab.json'), 'w') as f:
            json.dump({name: url}, f)
        return f'open-mmlab://{name}'
    # torchvision:// and mmcls:// name fixed URLs we cannot reach: the checkpoint goes where the
    # http loader caches that URL's download, which proves the route through it.
    model = 'resnet18'
    urls = (mmengine_checkpoint.get_torchvision_models() if scheme == 'torchvision'
            else mmengine_checkpoint.get_mmcls_models())
    cached = osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urls[model]))
    os.makedirs(osp.dirname(cached), exist_ok=True)
    os.replace(path, cached)
    return f'{scheme}://{model}'


SCHEMES = ('local', 'local (legacy format)', 'http', 'open-mmlab (http)',
           'open-mmlab (mmengine home)', 'torchvision', 'mmcls')


@pytest.mark.parametrize('scheme', SCHEMES)
@pytest.mark.parametrize('attack', ATTACK_NAMES)
def test_attack_refused_on_every_scheme(attack, scheme, tmp_path, caches, http_root):
    marker = tmp_path / 'marker'
    payload, culprit = attacks(marker)[attack]
    path = tmp_path / 'evil.pth'
    write_checkpoint(path, payload, legacy=scheme.endswith('(legacy format)'))
    source = place(scheme, f'evil-{ATTACK_NAMES.index(attack)}', path, http_root)
    before = global_state()
    with pytest.raises(UnsafeCheckpointError) as error:
        CheckpointLoader.load_checkpoint(source, map_location='cpu')
    assert_refused(error, source if scheme.startswith(('local', 'http')) else '.pth', culprit)
    assert not marker.exists()
    assert_unchanged(before, global_state())


@pytest.mark.parametrize('attack', ATTACK_NAMES)
def test_attack_refused_through_file_backend(attack, tmp_path):
    """s3:// and petrel:// read bytes through mmengine's file backend (petrel, unreachable here):
    the same loader on the local backend."""
    marker = tmp_path / 'marker'
    payload, culprit = attacks(marker)[attack]
    write_checkpoint(tmp_path / 'evil.pth', payload)
    before = global_state()
    with pytest.raises(UnsafeCheckpointError) as error:
        load_from_ceph(str(tmp_path / 'evil.pth'), map_location='cpu', backend='local')
    assert_refused(error, tmp_path / 'evil.pth', culprit)
    assert not marker.exists()
    assert_unchanged(before, global_state())


def test_every_scheme_goes_through_the_safe_loader():
    """Each prefix mmengine knows is served by our loader, and those loaders end in
    safe_torch_load (pavi:// needs pavi, which is not installed: it says so)."""
    schemes = CheckpointLoader._schemes
    assert set(schemes) == {'', 'http://', 'https://', 'pavi://', r'(\S+\:)?s3://',
                            r'(\S+\:)?petrel://', 'modelzoo://', 'torchvision://', 'open-mmlab://',
                            'openmmlab://', 'mmcls://'}
    for prefix, loader in schemes.items():
        assert loader.__module__ == checkpoint.__name__, prefix
    for path, loader in [('ckpt.pth', 'load_from_local'), ('https://x/a.pth', 'load_from_http'),
                         ('s3://bucket/a.pth', 'load_from_ceph'),
                         ('cluster:s3://bucket/a.pth', 'load_from_ceph'),
                         ('petrel://bucket/a.pth', 'load_from_ceph'),
                         ('modelzoo://resnet50', 'load_from_torchvision'),
                         ('openmmlab://resnet50_caffe', 'load_from_openmmlab'),
                         ('pavi://model', 'load_from_pavi'),
                         ('mmcls://resnet50', 'load_from_mmcls')]:
        assert CheckpointLoader._get_checkpoint_loader(path) is getattr(checkpoint, loader), path
    with pytest.raises(ImportError, match='pavi'):
        CheckpointLoader.load_checkpoint('pavi://model')


def test_http_checkpoint_loads_and_is_cached(tmp_path, caches, http_root):
    """A good checkpoint over http loads (into torch's hub cache, as mmengine's loader did)."""
    base_url, served = http_root
    torch.save({'state_dict': {'weight': torch.arange(3.)}, 'meta': {'seed': np.int64(1)}},
               served / 'good.pth')
    loaded = CheckpointLoader.load_checkpoint(f'{base_url}/good.pth', map_location='cpu')
    assert loaded['state_dict']['weight'].tolist() == [0., 1., 2.] and loaded['meta']['seed'] == 1
    assert osp.isfile(osp.join(torch.hub.get_dir(), 'checkpoints', 'good.pth'))


# ---------------------------------------------------------------------------------------------
# Every path of ours that loads checkpoints: a code-running attack and config text.


def config_text_checkpoint(path, marker, base=None, state_dict=None):
    """``base`` (our own trusted file; else ``state_dict``) with Python config text that
    creates ``marker`` where mmengine looks for config text: meta.config (legacy, parsed on
    resume), message_hub.runtime_info.cfg and meta.cfg (parsed by inferencers without a config)."""
    ckpt = torch.load(base, weights_only=False) if base else {
        'state_dict': state_dict or {}, 'meta': {},
        'message_hub': {'log_scalars': {}, 'runtime_info': {}, 'resumed_keys': {}}}
    ckpt['meta']['config'] = ckpt['meta']['cfg'] = python_code(marker)
    ckpt['message_hub']['runtime_info']['cfg'] = python_code(marker)
    torch.save(ckpt, path)
    return str(path)


def code_checkpoint(path, marker):
    write_checkpoint(path, attacks(marker)['os.system'][0])
    return str(path)


def short_cfg(config, demo_root, work_dir, **options):
    """A demo config on the test's demo data, two short epochs (the demo's schedulers change at
    the first), as tests/test_tasks.py."""
    from groupmix_backbones.runtime import prepare_cfg
    task_root = {'mmpretrain': 'imagenet', 'mmdet': 'coco/', 'mmseg': 'ade/ADEChallengeData2016'}
    cfg = Config.fromfile(osp.join(REPO, config))
    root = osp.join(demo_root, task_root[cfg.default_scope])
    cfg.merge_from_dict({f'{loader}.dataset.data_root': root
                         for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')})
    cfg.merge_from_dict({'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2,
                         'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
                         **options})
    return prepare_cfg(cfg, config, work_dir=str(work_dir))


@pytest.fixture(autouse=True)
def own_default_scope():
    """The inferencers, init APIs and Runners set mmengine's process-wide default scope: each test
    starts in mmpretrain's and leaves the scopes as they were."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def trained_cls(demo_root, tmp_path_factory):
    """The classification demo trained briefly: (config, final checkpoint path)."""
    work_dir = tmp_path_factory.mktemp('cls')
    cfg = short_cfg(CLS_DEMO, demo_root, work_dir)
    Runner.from_cfg(cfg).train()
    return cfg, osp.join(work_dir, 'epoch_2.pth')


def runner_cfg(trained_cls, tmp_path, **fields):
    cfg = copy.deepcopy(trained_cls[0])
    for key, value in dict(work_dir=str(tmp_path / 'work'), **fields).items():
        cfg[key] = value
    return cfg


def test_runner_resume(trained_cls, tmp_path):
    """As tools/train.py --resume CHECKPOINT."""
    marker = tmp_path / 'marker'
    cfg = runner_cfg(trained_cls, tmp_path, resume=True,
                     load_from=code_checkpoint(tmp_path / 'evil.pth', marker))
    with pytest.raises(UnsafeCheckpointError, match='system'):
        Runner.from_cfg(cfg).train()
    cfg = runner_cfg(trained_cls, tmp_path, resume=True, load_from=config_text_checkpoint(
        tmp_path / 'config.pth', marker, base=trained_cls[1]))
    runner = Runner.from_cfg(cfg)
    runner.train()  # resumes at the end of the schedule: nothing left to train
    assert runner.epoch == 2
    assert not marker.exists()


class ResumedState(Hook):
    """Records the runner's state right after resume (before_train, ahead of mmengine's hooks)."""
    priority = 'HIGHEST'

    def before_train(self, runner):
        hub = runner.message_hub
        self.state = {
            'epoch': runner.epoch, 'iter': runner.iter,
            'log_scalars': copy.deepcopy(dict(hub.log_scalars)),
            'runtime_info': copy.deepcopy(dict(hub.runtime_info)),
            'optimizer': copy.deepcopy(runner.optim_wrapper.state_dict()),
            'param_schedulers': [scheduler.state_dict() for scheduler in runner.param_schedulers]}


def test_resume_restores_the_saved_state(trained_cls, tmp_path):
    """A real mmengine checkpoint (message hub HistoryBuffers, numpy values, optimizer and
    scheduler state) resumes to what was saved, as plain pickle reads our own file."""
    saved = torch.load(trained_cls[1], weights_only=False)
    runner = Runner.from_cfg(runner_cfg(trained_cls, tmp_path, resume=True,
                                        load_from=trained_cls[1]))
    runner.register_hook(resumed := ResumedState())
    runner.train()  # resumes at the end of the schedule: nothing left to train
    state, hub = resumed.state, saved['message_hub']
    assert (state['epoch'], state['iter']) == (saved['meta']['epoch'], saved['meta']['iter'])
    assert state['epoch'] == 2 and state['iter'] > 0
    assert hub['log_scalars'] and all(isinstance(history, np.ndarray)
                                      for buffer in hub['log_scalars'].values()
                                      for history in buffer.data)
    assert_same(state['log_scalars'], dict(hub['log_scalars']))
    assert 'cfg' in hub['runtime_info']  # dropped: the runner keeps its own config's text
    assert_same({key: value for key, value in state['runtime_info'].items() if key != 'cfg'},
                {key: value for key, value in hub['runtime_info'].items() if key != 'cfg'})
    assert_same(state['optimizer'], saved['optimizer'])
    assert len(saved['param_schedulers']) == 2
    assert_same(state['param_schedulers'], saved['param_schedulers'])


def test_runner_load_from(trained_cls, tmp_path):
    """As tools/test.py CONFIG CHECKPOINT (load_from)."""
    marker = tmp_path / 'marker'
    cfg = runner_cfg(trained_cls, tmp_path, load_from=code_checkpoint(tmp_path / 'e.pth', marker))
    with pytest.raises(UnsafeCheckpointError, match='system'):
        Runner.from_cfg(cfg).test()
    cfg = runner_cfg(trained_cls, tmp_path, load_from=config_text_checkpoint(
        tmp_path / 'config.pth', marker, base=trained_cls[1]))
    assert 'accuracy/top1' in Runner.from_cfg(cfg).test()
    assert not marker.exists()


def test_init_cfg_pretrained(trained_cls, tmp_path):
    """A backbone's init_cfg=dict(type='Pretrained', checkpoint=...), as the det/seg demos."""
    from mmdet.registry import MODELS
    marker = tmp_path / 'marker'
    backbone = Config.fromfile(osp.join(REPO, DET_DEMO)).model.backbone
    backbone.init_cfg.checkpoint = code_checkpoint(tmp_path / 'e.pth', marker)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        MODELS.build(backbone).init_weights()
    backbone.init_cfg.checkpoint = config_text_checkpoint(tmp_path / 'config.pth', marker,
                                                          base=trained_cls[1])
    MODELS.build(backbone).init_weights()
    assert not marker.exists()


def det_seg_cfg(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    from groupmix_backbones.runtime import replace_sync_bn
    replace_sync_bn(cfg.model)
    return cfg


@pytest.mark.parametrize('config', [DET_DEMO, SEG_DEMO], ids=['mmdet', 'mmseg'])
def test_init_model_apis(config, tmp_path):
    """mmdet's init_detector and mmseg's init_model."""
    if config == DET_DEMO:
        from mmdet.apis import init_detector as init_model
    else:
        from mmseg.apis import init_model
    marker = tmp_path / 'marker'
    cfg = det_seg_cfg(config)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        init_model(cfg, code_checkpoint(tmp_path / 'e.pth', marker), device='cpu')
    model = init_model(cfg, None, device='cpu')
    init_model(cfg, config_text_checkpoint(tmp_path / 'config.pth', marker,
                                           state_dict=model.state_dict()), device='cpu')
    assert not marker.exists()


@pytest.mark.parametrize('config', [DET_DEMO, SEG_DEMO], ids=['DetInferencer', 'MMSegInferencer'])
def test_det_seg_inferencers(config, tmp_path):
    """With a config, and without one (mmengine then parses the checkpoint's config text: we
    dropped it, so it says it cannot find one)."""
    if config == DET_DEMO:
        from mmdet.apis import DetInferencer as Inferencer
    else:
        from mmseg.apis import MMSegInferencer as Inferencer
    marker = tmp_path / 'marker'
    cfg = det_seg_cfg(config)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        Inferencer(model=cfg, weights=code_checkpoint(tmp_path / 'e.pth', marker), device='cpu')
    state = Inferencer(model=cfg, weights=None, device='cpu').model.state_dict()
    text = config_text_checkpoint(tmp_path / 'config.pth', marker, state_dict=state)
    Inferencer(model=cfg, weights=text, device='cpu')
    with pytest.raises(ValueError, match='Cannot find the config in the checkpoint'):
        Inferencer(model=None, weights=text, device='cpu')
    assert not marker.exists()


def test_image_classification_inferencer(trained_cls, tmp_path):
    from mmpretrain.apis import ImageClassificationInferencer
    marker = tmp_path / 'marker'
    config = osp.join(REPO, CLS_DEMO)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        ImageClassificationInferencer(
            model=config, pretrained=code_checkpoint(tmp_path / 'e.pth', marker), device='cpu')
    ImageClassificationInferencer(model=config, device='cpu', pretrained=config_text_checkpoint(
        tmp_path / 'config.pth', marker, base=trained_cls[1]))
    assert not marker.exists()


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]),
               CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


CONVERTERS = {  # converter: a minimal official checkpoint of it
    'tools/model_converters/groupmixformer2mmpretrain.py': {
        'conv_stem.proj1.weight': torch.zeros(2, 3, 3, 3)},
    'tools/model_converters/flatten2mmpretrain.py': {'pos_embed1': torch.zeros(1, 4, 8)},
}


@pytest.mark.parametrize('converter', list(CONVERTERS), ids=osp.basename)
def test_converter_cli(converter, tmp_path):
    marker = tmp_path / 'marker'
    result = run_tool(converter, code_checkpoint(tmp_path / 'e.pth', marker), str(tmp_path / 'o'))
    assert result.returncode != 0 and 'UnsafeCheckpointError' in result.stderr, result.stderr
    assert not (tmp_path / 'o').exists()
    source = tmp_path / 'official.pth'
    torch.save({'model': CONVERTERS[converter], 'meta': {'config': python_code(marker)}}, source)
    result = run_tool(converter, str(source), str(tmp_path / 'converted.pth'))
    assert result.returncode == 0, result.stderr
    assert 'config' not in torch.load(tmp_path / 'converted.pth', weights_only=True)['meta']
    assert not marker.exists()


def test_tools_test_py(trained_cls, demo_root, tmp_path):
    """tools/test.py CONFIG CHECKPOINT as a subprocess."""
    marker = tmp_path / 'marker'
    options = ['--cfg-options'] + [
        f'{loader}.dataset.data_root={osp.join(demo_root, "imagenet")}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    result = run_tool('tools/test.py', CLS_DEMO, code_checkpoint(tmp_path / 'e.pth', marker),
                      '--work-dir', str(tmp_path / 'w1'), *options)
    assert 'UnsafeCheckpointError' in result.stderr, result.stderr[-3000:]
    assert result.returncode != 0
    text = config_text_checkpoint(tmp_path / 'config.pth', marker, base=trained_cls[1])
    result = run_tool('tools/test.py', CLS_DEMO, text, '--work-dir', str(tmp_path / 'w2'),
                      '--metrics-out', str(tmp_path / 'metrics.json'), *options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'accuracy/top1' in json.load(open(tmp_path / 'metrics.json'))
    assert not marker.exists()
