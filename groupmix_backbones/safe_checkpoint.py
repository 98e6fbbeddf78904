"""Safe checkpoint loading for mmengine under torch>=2.6: a checkpoint is data.

mmengine's checkpoints hold, besides tensors, the message hub's ``HistoryBuffer`` objects and numpy
arrays and scalars, which torch's ``weights_only`` unpickler refuses unless allowlisted.
Allowlisting the real types would let a crafted pickle run ``numpy.dtype.__setstate__`` (which
forges object pointers from raw bytes) or ``HistoryBuffer.__setstate__`` (which writes into the
class's method table) on data of its choice, and HistoryBuffer pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')``, where a real ``getattr`` reaches any module's globals. So the
allowlist holds only stand-ins written here, under the names those pickles use: they check the
pickled state and build the real objects themselves (``numpy.frombuffer``, ``HistoryBuffer(...)``);
``getattr`` answers HistoryBuffer's statistics by name and nothing else. Loaded OrderedDicts may
carry no attributes but torch's ``_metadata`` (torch's BUILD would let them shadow methods).
Official training checkpoints also hold their script's configuration, a yacs ``CfgNode`` (Swin
codebases) or an ``argparse.Namespace`` (timm-style scripts): both load as plain dicts, without
yacs's or argparse's code.

Every URL scheme mmengine's ``CheckpointLoader`` knows has a loader here that ends in
:func:`safe_torch_load` (:mod:`groupmix_backbones.policy` puts them in place of mmengine's, whose
http loader uses ``weights_only=False``), and the config text
that checkpoints carry is dropped on load: mmengine parses (executes) it on resume (legacy
``meta.config``) and in inferencers given no config.
"""
import collections
import io
import logging
import math
import os
import os.path as osp
import pickle
import re
import struct
from tempfile import TemporaryDirectory
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import (_get_mmengine_home,
                                        _process_mmcls_checkpoint, get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

ACCEPTED = ('tensors, numbers, strings, containers, numpy arrays and scalars of bool, integer, '
            'float, complex or string dtype, mmengine HistoryBuffers, and yacs CfgNodes and '
            'argparse Namespaces as plain dicts')
# The statistics HistoryBuffer registers by default (HistoryBuffer._set_default_statistics).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
NUMPY_CORES = ('numpy.core', 'numpy._core')  # numpy 1 and numpy 2 pickle these module names
# What a yacs CfgNode pickles besides its items: its __dict__ (yacs.config.CfgNode.__init__).
CFG_NODE_ATTRIBUTES = ('__immutable__', '__deprecated_keys__', '__renamed_keys__',
                       '__new_allowed__')
# Where checkpoints carry config text that mmengine would parse as a Python config.
CONFIG_TEXT_KEYS = (('meta', 'config'), ('meta', 'cfg'), ('message_hub', 'runtime_info', 'cfg'))


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint's pickle asks for something outside the allowlist; loading stopped there."""


class CorruptCheckpointError(ValueError):
    """The file is empty, truncated or damaged, or not a PyTorch checkpoint at all."""


class _Refused(Exception):
    """Raised by the stand-ins inside torch's unpickler (which would rewrap an UnpicklingError)."""

    def __init__(self, culprit, accepted=ACCEPTED):
        super().__init__(culprit)
        self.culprit, self.accepted = culprit, accepted


_UNBUILT = object()


class _StandIn:
    """Stands in for a numpy or mmengine object while torch unpickles: it checks the pickled state,
    builds the real object into ``value`` and is replaced by it afterwards."""
    pickled_as = ''
    value = _UNBUILT

    def __new__(cls, *args, **kwargs):  # NEWOBJ calls cls.__new__(cls, *args): build nothing yet
        return super().__new__(cls)

    def __init__(self, *args):
        if args:
            raise _Refused(f'a call of {self.pickled_as}{_abridged(args)}')

    def result(self):
        if self.value is _UNBUILT:
            raise _Refused(f'an incomplete {self.pickled_as} (not built from its constructor '
                           'arguments and state)')
        return self.value


class _Dtype(_StandIn):
    """``numpy.dtype(spec, align, copy)`` of a plain scalar type; its state sets the byte order."""
    pickled_as = 'numpy.dtype'

    def __init__(self, spec=None, align=False, copy=True):
        try:
            plain = type(spec) is str and type(align) in (bool, int) and not align
            dtype = np.dtype(spec) if plain else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in 'biufcUS' or dtype.fields or dtype.subdtype:
            raise _Refused(f'numpy.dtype{_abridged((spec, align, copy))}')
        self.value = dtype

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, elsize, alignment, flags): only the byte
        # order may differ from the dtype's own; numpy's __setstate__ is never called.
        own = self.result().__reduce__()[2]
        if not (type(state) is tuple and len(state) == len(own) and _equal(state[0], own[0])
                and type(state[1]) is str and state[1] in ('<', '>', '|', '=')
                and _equal(state[2:7], own[2:7])):
            raise _Refused(f'numpy.dtype {self.value} with state {_abridged(state)}')
        if state[1] in '<>':
            self.value = self.value.newbyteorder(state[1])


class _Array(_StandIn):
    """``numpy.ndarray`` from its state (version, shape, dtype, Fortran order, raw bytes)."""
    pickled_as = 'numpy.ndarray'

    def __setstate__(self, state):
        version, shape, dtype, fortran, data = state if (
            isinstance(state, tuple) and len(state) == 5) else (None, ) * 5
        if not (_equal(version, 1) and type(shape) is tuple and isinstance(dtype, _Dtype)
                and all(type(n) is int and n >= 0 for n in shape) and type(fortran) is bool
                and type(data) is bytes
                and len(data) == math.prod(shape) * dtype.result().itemsize):
            raise _Refused(f'a numpy.ndarray with state {_abridged(state)}')
        array = np.frombuffer(data, dtype=dtype.result())
        self.value = array.reshape(shape, order='F' if fortran else 'C').copy(order='K')


class _HistoryBuffer(_StandIn):
    """mmengine's ``HistoryBuffer`` made with its constructor from the pickled histories; the
    statistics methods in its state must be the registered ones (HistoryBuffer.__setstate__ would
    write them into the class's method table)."""
    pickled_as = 'mmengine.logging.history_buffer.HistoryBuffer'

    def __setstate__(self, state):
        keys = {'_log_history', '_count_history', 'max_length', 'statistics_methods'}
        if not (isinstance(state, dict) and set(state) <= keys
                and {'_log_history', '_count_history'} <= set(state)):
            raise _Refused(f'a HistoryBuffer with state {_abridged(state)}')
        methods = state.get('statistics_methods', {})
        histories = [state[key] for key in ('_log_history', '_count_history')]
        histories = [h.result() if isinstance(h, _Array) else h for h in histories]
        max_length = state.get('max_length', 1000000)
        if not (isinstance(methods, dict) and all(
                _equal(method, name) or method is HistoryBuffer._statistics_methods.get(name)
                for name, method in methods.items())
                and all(isinstance(h, np.ndarray) and h.ndim == 1 and h.dtype.kind in 'biuf'
                        for h in histories)
                and len(histories[0]) == len(histories[1])
                and type(max_length) is int and max_length > 0):
            raise _Refused(f'a HistoryBuffer with state {_abridged(state)}')
        self.value = HistoryBuffer(*histories, max_length=max_length)


class _Namespace(_StandIn):
    """``argparse.Namespace`` (the ``args`` timm-style scripts save): a plain dict of the
    attributes in its state."""
    pickled_as = 'argparse.Namespace'

    def __new__(cls, *args):
        namespace = super().__new__(cls)
        namespace.value = {}  # a Namespace without attributes pickles no state
        return namespace

    def __setstate__(self, state):
        if not (type(state) is dict and all(type(name) is str for name in state)):
            raise _Refused(f'an argparse.Namespace with state {_abridged(state)}')
        self.value = state


_CFG_NODE_MARK = object()  # out of a pickle's reach: only _CfgNode marks its OrderedDicts


class _CfgNode(_StandIn):
    """yacs's ``CfgNode``, a dict subclass: pickled as NEWOBJ, SETITEMS of its items, BUILD of its
    attributes. Torch sets items on plain dicts and OrderedDicts only, so this makes a marked
    OrderedDict, which :func:`_replace_stand_ins` turns into a plain dict of its items."""
    pickled_as = 'yacs.config.CfgNode'

    def __new__(cls, *args):
        if args:
            raise _Refused(f'a call of {cls.pickled_as}{_abridged(args)}')
        node = collections.OrderedDict()
        node.__dict__[cls.pickled_as] = _CFG_NODE_MARK
        return node


def _reconstruct(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')``: an array to be built."""
    if subtype is not _Array or not _equal((shape, typecode), ((0, ), b'b')):
        raise _Refused('numpy.core.multiarray._reconstruct'
                       + _abridged((_describe(subtype), shape, typecode)))
    return _Array()


def _scalar(dtype, data):
    """``numpy.core.multiarray.scalar(dtype, raw bytes)``: a numpy scalar of a plain dtype."""
    if not (isinstance(dtype, _Dtype) and type(data) is bytes
            and len(data) == dtype.result().itemsize):
        raise _Refused(f'numpy.core.multiarray.scalar{_abridged((_describe(dtype), data))}')
    return np.frombuffer(data, dtype=dtype.result())[0]


def _empty_bytes(*args):
    """``bytes()``, as pickle protocol 2 writes ``b''`` (the data of an empty numpy array)."""
    if args:
        raise _Refused(f'builtins.bytes{_abridged(args)}', accepted="bytes() only, for b''")
    return b''


def _history_buffer_statistic(owner, name):
    """``getattr`` as HistoryBuffer's pickles use it, ``getattr(HistoryBuffer, 'mean')``: answers
    the statistic's name, and refuses everything else."""
    if owner is _HistoryBuffer and type(name) is str and name in HISTORY_BUFFER_STATISTICS:
        return name
    raise _Refused(f'getattr({_describe(owner)}, {_abridged(name)})',
                   accepted='getattr only for HistoryBuffer statistics: '
                   + ', '.join(HISTORY_BUFFER_STATISTICS))


def _equal(value, expected):
    """``value == expected`` for plain values and tuples of them, type for type (an unpickled
    value's own ``__eq__``, a tensor's say, is never asked)."""
    if type(value) is not type(expected):
        return False
    if type(value) is tuple:
        return len(value) == len(expected) and all(map(_equal, value, expected))
    return value == expected


def _describe(obj):
    """A class or function by its import name (stand-ins by the name they stand for)."""
    if isinstance(obj, _StandIn) or isinstance(obj, type) and issubclass(obj, _StandIn):
        return obj.pickled_as
    if hasattr(obj, '__qualname__') and hasattr(obj, '__module__'):
        return f'{obj.__module__}.{obj.__qualname__}'
    return _abridged(obj)


def _abridged(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else f'{text[:limit]}...'


SAFE_GLOBALS = [
    (_Dtype, 'numpy.dtype'),
    (_Array, 'numpy.ndarray'),
    *[(_reconstruct, f'{numpy_core}.multiarray._reconstruct') for numpy_core in NUMPY_CORES],
    *[(_scalar, f'{numpy_core}.multiarray.scalar') for numpy_core in NUMPY_CORES],
    (_HistoryBuffer, _HistoryBuffer.pickled_as),
    (_Namespace, _Namespace.pickled_as),
    (_CfgNode, _CfgNode.pickled_as),
    (_history_buffer_statistic, 'builtins.getattr'),
    (_empty_bytes, 'builtins.bytes'),
]


def add_safe_globals(*objects):
    """Allow more classes or functions in checkpoints you trust (e.g. your own metadata types).
    Torch calls and ``__setstate__``s them with whatever the file holds: add data types only."""
    SAFE_GLOBALS.extend(objects)


def _replace_stand_ins(node, done):
    """Put the built objects in place of the stand-ins in the loaded containers, in place (torch
    made them); ``done`` maps ``id`` to (container, replacement) for shared and cyclic ones."""
    if isinstance(node, _StandIn):
        return _replace_stand_ins(node.result(), done)  # a Namespace's dict holds more stand-ins
    if not isinstance(node, (dict, list, set)) and type(node) is not tuple:
        return node
    if id(node) in done:
        return done[id(node)][1]
    done[id(node)] = (node, node)
    if getattr(node, '__dict__', {}).get(_CfgNode.pickled_as) is _CFG_NODE_MARK:
        return _config_as_dict(node, done)
    if isinstance(node, dict):
        # torch BUILDs an OrderedDict by updating its __dict__: attributes there would shadow its
        # methods (mmengine calls state_dict.copy()); state dicts carry only torch's _metadata.
        attributes = set(getattr(node, '__dict__', ())) - {'_metadata'}
        if attributes:
            raise _Refused(f'a {type(node).__name__} with attributes {sorted(attributes)}',
                           accepted="only torch's _metadata on a state dict")
        for key, value in list(node.items()):
            node[key] = _replace_stand_ins(value, done)
    elif isinstance(node, list):
        node[:] = [_replace_stand_ins(value, done) for value in node]
    else:
        replaced = type(node)(_replace_stand_ins(value, done) for value in node)
        if isinstance(node, set):
            node.clear()
            node.update(replaced)
        else:
            done[id(node)] = (node, replaced)
            return replaced
    return node


def _config_as_dict(node, done):
    """A CfgNode's marked OrderedDict as a plain dict of its items, stand-ins replaced; its yacs
    attributes (immutability, deprecated and renamed keys) are dropped."""
    attributes = set(node.__dict__) - {_CfgNode.pickled_as}
    if not attributes <= set(CFG_NODE_ATTRIBUTES):
        raise _Refused(f'a {_CfgNode.pickled_as} with attributes {sorted(attributes)}',
                       accepted=f"only CfgNode's own {', '.join(CFG_NODE_ATTRIBUTES)}")
    plain = {}
    done[id(node)] = (node, plain)
    plain.update((key, _replace_stand_ins(value, done)) for key, value in node.items())
    return plain


def _drop_config_text(checkpoint, source):
    """Remove the config text mmengine would parse (execute): legacy ``meta.config`` on resume,
    ``message_hub.runtime_info.cfg`` and ``meta.cfg`` in inferencers given no config."""
    dropped = []
    for *parents, key in CONFIG_TEXT_KEYS:
        node = checkpoint
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict) and key in node:
            del node[key]
            dropped.append('.'.join((*parents, key)))
    if dropped:
        print_log(f'Ignored the config text in checkpoint {source!r} ({", ".join(dropped)}): a '
                  'checkpoint\'s text is never parsed as a config. Pass the config file instead.',
                  logger='current',
                  level=logging.WARNING if 'meta.config' in dropped else logging.INFO)


def _check_format(file, source):
    """Raise CorruptCheckpointError unless ``file`` starts as torch.save writes: a zip archive
    or, in torch's legacy format, a pickle."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, 'rb') as f:
            head = f.read(4)
    else:
        position = file.tell()
        head = file.read(4)
        file.seek(position)
    if not head:
        raise CorruptCheckpointError(f'Checkpoint {source!r} is empty (0 bytes).')
    if not head.startswith((b'PK\x03\x04', b'\x80')):
        raise CorruptCheckpointError(
            f'{source!r} is not a PyTorch checkpoint: torch.save writes a zip archive (or, in its '
            f'legacy format, a pickle), but this file starts with {head!r}.')


def _torch_refusal(error):
    """The reason in torch's weights-only UnpicklingError, without torch's advice around it."""
    for line in str(error).splitlines():
        line = re.sub(r'^.*WeightsUnpickler error:\s*', '', line.strip())
        line = line.removeprefix('Weights only load failed. ')
        if line and not line.startswith(_TORCH_ADVICE):
            return re.sub(r' Please use `torch\.serialization.*', '', line)
    return str(error)


_TORCH_READER_ERRORS = ('PytorchStreamReader', 'hasRecord', 'unexpected EOF', 'corrupted')
_TORCH_ADVICE = ('In PyTorch 2.6', 'This file can still be loaded', '(1)', '(2)',
                 'Check the documentation', 'Please file an issue')


def safe_torch_load(filename, map_location=None, source=None):
    """``torch.load(weights_only=True)`` with the stand-ins of :data:`SAFE_GLOBALS` allowed, and the
    checkpoint's config text dropped. ``filename`` is a path or a binary file object; ``source``
    names it in messages (default: ``filename``).

    Raises:
        UnsafeCheckpointError: the pickle asks for a global, call or state outside the allowlist.
        CorruptCheckpointError: the file is empty, truncated or not a checkpoint.
    """
    if source is None:
        source = os.fspath(filename) if isinstance(filename, os.PathLike) else filename
    _check_format(filename, source)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
        checkpoint = _replace_stand_ins(checkpoint, {})
    except _Refused as refused:
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {source!r}: its pickle asks for {refused.culprit}, which '
            f'is not checkpoint data this loader accepts ({refused.accepted}). Loading stopped '
            'there.') from None
    except pickle.UnpicklingError as error:
        reason = _torch_refusal(error)
        if reason.startswith('Unsupported operand'):
            raise CorruptCheckpointError(
                f'Checkpoint {source!r} could not be unpickled: {reason} (damaged, or written '
                'with a pickle protocol above 2, which torch.save does not use).') from None
        global_name = re.search(r'GLOBAL (\S+)', reason)
        if global_name:
            raise UnsafeCheckpointError(
                f'Refused to load checkpoint {source!r}: its pickle asks for GLOBAL '
                f'{global_name.group(1)}, which is not checkpoint data this loader accepts '
                f'({ACCEPTED}). Loading stopped there. If you trust this file and that object, '
                'allow it with groupmix_backbones.safe_checkpoint.add_safe_globals(obj).'
            ) from None
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {source!r}: its pickle asks for something torch\'s '
            f'weights-only unpickler does not allow ({reason}). Loading stopped there.') from None
    except EOFError:
        raise CorruptCheckpointError(
            f'Checkpoint {source!r} ends early: it is truncated or damaged.') from None
    except RecursionError:
        raise CorruptCheckpointError(
            f'Checkpoint {source!r} nests containers deeper than the recursion limit.') from None
    except RuntimeError as error:  # torch's archive and storage readers, or else pass it on
        if not any(sign in str(error) for sign in _TORCH_READER_ERRORS):
            raise
        raise CorruptCheckpointError(
            f'Checkpoint {source!r} is truncated or damaged, or not a torch.save archive: '
            f'{error}') from None
    except (AssertionError, AttributeError, IndexError, KeyError, TypeError, ValueError,
            struct.error) as error:  # what torch's unpickler raises on malformed pickle streams
        raise CorruptCheckpointError(
            f'Checkpoint {source!r} could not be unpickled, its pickle is malformed: '
            f'{type(error).__name__}: {error}') from None
    _drop_config_text(checkpoint, source)
    return checkpoint


# A loader for every URL scheme mmengine knows, each ending in safe_torch_load (installed in place
# of mmengine's by groupmix_backbones.policy).


def load_from_local(filename, map_location=None):
    """Local paths."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    return safe_torch_load(filename, map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    """http(s) URLs: downloaded into torch's hub cache as mmengine does (rank 0 first), then loaded
    safely (mmengine loads them with ``weights_only=False``)."""
    name = osp.basename(urlparse(filename).path)
    if not name:
        raise ValueError(f'Checkpoint URL {filename!r} does not end in a file name.')
    cached = osp.join(model_dir or osp.join(torch.hub.get_dir(), 'checkpoints'), name)
    rank, world_size = get_dist_info()
    if rank == 0:
        _download(filename, cached, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            _download(filename, cached, progress)
    return safe_torch_load(cached, map_location, source=filename)


def _download(url, path, progress):
    if not osp.exists(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
        print_log(f'Downloading {url} to {path}', logger='current')
        torch.hub.download_url_to_file(url, path, progress=progress)


def load_from_pavi(filename, map_location=None):
    """pavi:// model cloud paths, downloaded into a temporary directory."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return safe_torch_load(downloaded, map_location, source=filename)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    """s3:// and petrel:// paths, read through mmengine's file backend."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_torch_load(buffer, map_location, source=filename)


def load_from_torchvision(filename, map_location=None):
    """torchvision://NAME (modelzoo://NAME): torchvision's URL of that model, over http."""
    return load_from_http(get_torchvision_models()[filename.split('://', 1)[1]],
                          map_location=map_location)


def load_from_openmmlab(filename, map_location=None):
    """open-mmlab://NAME: mmengine's URL (or file under the mmengine home) of that model."""
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_from_local(osp.join(_get_mmengine_home(), url), map_location)


def load_from_mmcls(filename, map_location=None):
    """mmcls://NAME: an mmcls model over http, its keys renamed as mmengine does."""
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]],
                                map_location=map_location)
    return _process_mmcls_checkpoint(checkpoint)
