"""Loading ``init_cfg`` checkpoints into a backbone (recognised, converted when official, strict)
and the check of a checkpoint against the backbone it is loaded into, with messages that say what
matched, what did not, and what to do (a converter for official checkpoints)."""
from collections import OrderedDict
from typing import List, Mapping, Optional

import torch
from mmengine.logging import print_log

from ..converters import convert_for_model, describe_keys, recognise

SHOWN = 5  # keys shown per kind of mismatch


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the backbone it is loaded into (wrong family, arch or format)."""


def _arch_text(backbone) -> str:
    arch = backbone.arch_settings
    for name in backbone.arch_zoo:
        if backbone.resolve_arch(name) == arch:
            return f"{type(backbone).__name__}(arch='{name}')"
    return f'{type(backbone).__name__}(arch={arch})'


def _some(keys: List[str]) -> str:
    more = f' (+{len(keys) - SHOWN} more)' if len(keys) > SHOWN else ''
    return '; '.join(keys[:SHOWN]) + more


def _official_hint(state_dict) -> str:
    found = recognise(state_dict)
    if found is None:
        return ''
    fmt, backbone = found
    return (f' It is an official {backbone} checkpoint ({fmt.repo}): load it through mmengine '
            f'(init_cfg, load_from, load_checkpoint), which converts it, or convert it with '
            f'`python {fmt.script} SRC DST` and load DST.')


def check_backbone_state(backbone, state_dict, prefix: str, *, optional=(), new=()) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` holds, under ``prefix``, every
    tensor of ``backbone`` with its shape, and nothing of another structure. Keys under the
    ``optional`` prefixes (modules of options the backbone may be built without) may be left over;
    keys under the ``new`` prefixes (modules of options pretrained checkpoints lack) may be absent.
    """
    ours = {prefix + key: value for key, value in backbone.state_dict().items()}
    present = [key for key in state_dict if key.startswith(prefix)]
    new = tuple(prefix + p for p in new)
    missing = [key for key in ours if key not in state_dict
               and not key.endswith('num_batches_tracked') and not key.startswith(new)]
    mismatched = [f'{key}: checkpoint {tuple(state_dict[key].shape)}, model {tuple(value.shape)}'
                  for key, value in ours.items() if key in state_dict
                  and torch.is_tensor(state_dict[key]) and state_dict[key].shape != value.shape]
    optional = tuple(prefix + p for p in optional)
    unexpected = [key for key in present if key not in ours and not key.startswith(optional)]
    if not (missing or mismatched or unexpected):
        return
    matched = sum(key in state_dict and torch.is_tensor(state_dict[key])
                  and state_dict[key].shape == value.shape for key, value in ours.items())
    where = f" under '{prefix}'" if prefix else ''
    lines = [f'This checkpoint does not fit {_arch_text(backbone)}: {matched} of {len(ours)} '
             f'tensors match{where}.']
    if not matched:
        lines.append(f'It has {describe_keys(state_dict)}.' + _official_hint(state_dict))
    else:
        lines += [f'{kind}: {_some(keys)}' for kind, keys in (
            ('missing', missing), ('shape mismatch', mismatched), ('unexpected', unexpected)) if keys]
        saved = backbone.saved_arch(state_dict, prefix)
        if saved == _arch_text(backbone):
            lines.append(f'It holds {saved} too, with other modules: build the backbone with the '
                         'options it was saved with (e.g. output and stage norms).')
        elif saved:
            lines.append(f'It holds {saved}; valid archs: {", ".join(backbone.arch_zoo)}. Use '
                         'the config of its arch, or a checkpoint of this one.')
        else:
            lines.append('It was saved from another arch or family; use the config it was '
                         'trained with, or a checkpoint of this arch.')
    raise CheckpointMismatchError('\n'.join(lines))


def _under(state, prefix: str):
    """The entries of ``state`` under ``prefix``, without it, with their metadata (key versions)."""
    part = OrderedDict((key[len(prefix):], value) for key, value in state.items()
                       if key.startswith(prefix))
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        part._metadata = OrderedDict(
            (key[len(prefix):] if key.startswith(prefix) else '', value)
            for key, value in metadata.items() if key.startswith(prefix) or key == prefix[:-1])
    return part


def pretrained_state(backbone, checkpoint, *, prefix: Optional[str] = None, source: str = ''):
    """The state dict to load into ``backbone`` from a checkpoint, recognised: an official one of
    our families (converted, logged), or ours: a whole model (classifier, detector, segmentor)
    holding the backbone under ``prefix`` (``'backbone.'`` when no prefix is given and no key of
    the backbone is at the top), or the backbone's own state dict. Ours keep their metadata, so
    that older key versions are renamed on load."""
    converted = convert_for_model(backbone, checkpoint, source=source)
    if converted is not None:
        return converted
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else {}
    if any(key.startswith('module.') for key in state):  # saved from a DDP wrapper
        state = _under(state, 'module.')
    if prefix is None and not any(key in state for key in backbone.state_dict()) and \
            any(key.startswith('backbone.') for key in state):
        prefix = 'backbone.'
    if not prefix:
        return state
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    if not any(key.startswith(prefix) for key in state):
        raise CheckpointMismatchError(
            f'Checkpoint {source!r} has no key under prefix {prefix!r} for '
            f'{_arch_text(backbone)}; it has {describe_keys(state)}.' + _official_hint(state))
    return _under(state, prefix)


def load_pretrained(backbone, cfg: Mapping) -> None:
    """Load the checkpoint of an ``init_cfg`` ``Pretrained`` entry into ``backbone``: read by
    mmengine's ``CheckpointLoader`` (our safe loaders), recognised (:func:`pretrained_state`) and
    loaded strictly: the backbone's check (:func:`check_backbone_state`) refuses any missing,
    unexpected or misshapen tensor with what matched and what to do; only the norms of options
    pretrained checkpoints lack start fresh, and those of options the backbone was built without
    are left over."""
    from mmengine.runner.checkpoint import CheckpointLoader
    path = cfg['checkpoint']
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location=cfg.get('map_location', 'cpu'))
    state = pretrained_state(backbone, checkpoint, prefix=cfg.get('prefix'), source=path)
    print_log(f'Load {_arch_text(backbone)} from {path}'
              + (f" (prefix {cfg['prefix']!r})" if cfg.get('prefix') else ''), logger='current')
    # strict through the backbone's check, which lets only those norms differ
    backbone.load_state_dict(state, strict=False)
