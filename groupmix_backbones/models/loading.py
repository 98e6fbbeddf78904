"""Checks of a checkpoint against the backbone it is loaded into, with messages that say what
matched, what did not, and what to do (a converter for official checkpoints)."""
from typing import List

import torch

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


def _pretrained_checkpoint(init_cfg):
    """(path, loaded checkpoint, prefix) of the ``Pretrained`` entry of ``init_cfg``."""
    from mmengine.runner.checkpoint import CheckpointLoader
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    cfg = next(c for c in cfgs if c.get('type') == 'Pretrained')
    checkpoint = CheckpointLoader.load_checkpoint(cfg['checkpoint'], map_location='cpu')
    return cfg['checkpoint'], checkpoint, cfg.get('prefix')


def load_official_pretrained(backbone, init_cfg) -> None:
    """Load the ``init_cfg`` Pretrained checkpoint that lacks the configured prefix into
    ``backbone``: converted when it is an official checkpoint of ours, otherwise the error
    that says what it has."""
    from mmengine.runner.checkpoint import load_state_dict
    path, checkpoint, prefix = _pretrained_checkpoint(init_cfg)
    state = convert_for_model(backbone, checkpoint, source=path)
    if state is None:
        state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
        raise CheckpointMismatchError(
            f'init_cfg checkpoint {path!r} has no key under prefix {prefix!r} for '
            f'{_arch_text(backbone)}; it has {describe_keys(state)}.' + _official_hint(state))
    load_state_dict(backbone, state, strict=False, logger='current')
