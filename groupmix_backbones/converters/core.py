"""The converter core: rule tables that rename official checkpoint keys to ours, the recognition of
official checkpoints, their conversion on load into a model of ours (:func:`convert_for_model`,
which :mod:`groupmix_backbones.policy` applies wherever mmengine loads a state dict) and the command
line every ``tools/model_converters/*.py`` runs."""
import argparse
import os.path as osp
import re
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log

from ..registry import BACKBONES
from ..safe_checkpoint import safe_torch_load

Target = Union[str, Callable[[re.Match], Optional[str]], None]
# Entries of an official checkpoint that may hold its state dict, in the order one is taken: the
# main weights before the EMA ones (STM-Evaluation's evaluation and detection code read 'model');
# a checkpoint with only EMA weights gives those.
ENTRIES = ('model', 'state_dict', 'model_ema', 'state_dict_ema')
CLASSIFIER_TARGET = ("the classifier of our *_in1k.py config and, with prefix='backbone.', into "
                     'the detection and segmentation backbones')


class ConversionError(KeyError):
    """An official checkpoint that cannot be converted: the message says what was found and what
    was expected."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class Rules:
    """Ordered ``(pattern, target)`` rules on whole keys (``re.fullmatch``); the first match wins.

    ``target`` is a template for ``match.expand`` (``r'backbone.\\1'``), a callable taking the match
    and returning the new key, or None to drop the key. A callable may apply another table to a
    group (``lambda m: f'blocks.{m[1]}.' + BLOCK(m[2])``).
    """

    def __init__(self, *rules: Tuple[str, Target]):
        self.rules = [(re.compile(pattern), target) for pattern, target in rules]

    def __call__(self, key: str) -> Optional[str]:
        for pattern, target in self.rules:
            match = pattern.fullmatch(key)
            if match:
                if target is None:
                    return None
                return target(match) if callable(target) else match.expand(target)
        raise ConversionError(key)


class OfficialFormat:
    """How one family's official checkpoints become ours.

    Args:
        family (str): The family's name, e.g. ``'GroupMixFormer'``.
        repo (str): Where the official code lives, e.g. ``'AILab-CVC/GroupMixFormer'``.
        script (str): The converter under ``tools/model_converters/``.
        detect (callable): Official state dict -> our backbone type (``'FLattenSwin'``), or None
            when it is not this family's.
        rules (dict): Our backbone type -> :class:`Rules` for its keys.
        expected (str): What an official checkpoint of the family has, for error messages.
        arch_of (callable, optional): (official state dict, backbone type) -> our arch name, raising
            :class:`ConversionError` (what was found, which sizes exist) when none fits.
        adapt (callable, optional): (our key, official tensor) -> our tensor, for parameters whose
            layout differs (e.g. a 1x1 conv's weight used by a linear layer).
        target (str): What the converted checkpoint loads strictly into, for the converter's help.
    """

    def __init__(self, *, family: str, repo: str, script: str,
                 detect: Callable[[Mapping], Optional[str]], rules: Dict[str, Rules],
                 expected: str, arch_of: Optional[Callable[[Mapping, str], str]] = None,
                 adapt: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None,
                 target: str = CLASSIFIER_TARGET):
        self.family, self.repo, self.script = family, repo, script
        self.detect, self.rules, self.expected = detect, rules, expected
        self.arch_of, self.adapt, self.target = arch_of, adapt, target

    def identify(self, state: Mapping) -> Tuple[str, Optional[str]]:
        """(our backbone type, arch name or None) of an official state dict; refused otherwise."""
        backbone = self.detect(state)
        if backbone is None:
            raise ConversionError(
                f'Not an official {self.family} checkpoint: expected {self.expected}; found '
                f'{describe_keys(state)}.')
        return backbone, self.arch_of(state, backbone) if self.arch_of else None

    def convert(self, checkpoint: Mapping) -> Tuple[Dict[str, torch.Tensor], str]:
        """Our state dict (classifier keys: ``backbone.*``, ``head.fc.*``) and backbone type."""
        state = official_state_dict(checkpoint)
        backbone, _ = self.identify(state)
        return self.rename(state, backbone), backbone

    def rename(self, state: Mapping, backbone: str) -> Dict[str, torch.Tensor]:
        """The official state dict of an identified ``backbone`` in our names and layouts."""
        converted = {}
        for key, value in state.items():
            try:
                new = self.rules[backbone](key)
            except ConversionError:
                raise ConversionError(f'Unknown key {key!r} for an official {backbone} checkpoint '
                                      f'({self.repo}); it was not converted.') from None
            if new is not None:
                converted[new] = self.adapt(new, value) if self.adapt else value
        return converted

    def convert_checkpoint(self, checkpoint: Mapping, source: str) -> Tuple[dict, str]:
        """Ours, ``{'state_dict': ..., 'meta': ...}``, of an official checkpoint of this family, and
        a line saying what was converted (family, model, entry and key counts)."""
        entry, state = official_entry(checkpoint)
        backbone, arch = self.identify(state)
        converted = self.rename(state, backbone)
        meta = dict(converted_from=source, official_entry=entry, backbone=backbone)
        if arch:
            meta['arch'] = arch
        official_meta = checkpoint.get('meta')
        if isinstance(official_meta, Mapping) and official_meta.get('CLASSES'):
            meta['dataset_meta'] = dict(classes=tuple(official_meta['CLASSES']))  # mmdet 2.x
        model = f"{backbone} (arch='{arch}')" if arch else backbone
        unused = [key for key in ENTRIES
                  if key != entry and isinstance(checkpoint.get(key), Mapping)]
        summary = (f"{len(state)} tensors of the {entry or 'top'!r} entry of an official "
                   f'{self.family} checkpoint ({self.repo}), {model}, -> {len(converted)} tensors '
                   'of ours' + (f' (not used: {", ".join(unused)})' if unused else ''))
        return dict(state_dict=converted, meta=meta), summary

    def main(self, argv: Optional[Sequence[str]] = None) -> None:
        """``SCRIPT SRC DST``: convert the official checkpoint SRC and save ours to DST."""
        parser = argparse.ArgumentParser(
            description=f'Convert an official {self.family} checkpoint ({self.repo}) into ours: '
            f'DST loads strictly into {self.target}. Loading SRC directly converts it the same '
            'way in memory.')
        parser.add_argument('src', help='official checkpoint ({"model": state_dict} or a state dict)')
        parser.add_argument('dst', help='converted checkpoint to write')
        args = parser.parse_args(argv)
        converted, summary = self.convert_checkpoint(
            safe_torch_load(args.src, map_location='cpu'), source=osp.basename(args.src))
        torch.save(converted, args.dst)
        print(f'Converted {summary}; wrote {args.dst}')


FORMATS: List[OfficialFormat] = []


def register_format(fmt: OfficialFormat) -> OfficialFormat:
    FORMATS.append(fmt)
    return fmt


def official_entry(checkpoint: Mapping) -> Tuple[Optional[str], Mapping]:
    """The entry (first of :data:`ENTRIES`; None: the checkpoint is the state dict) and the state
    dict of an official checkpoint."""
    for key in ENTRIES:
        if isinstance(checkpoint.get(key), Mapping):
            return key, checkpoint[key]
    return None, checkpoint


def official_state_dict(checkpoint: Mapping) -> Mapping:
    """The state dict inside an official checkpoint (see :func:`official_entry`)."""
    return official_entry(checkpoint)[1]


def recognise(checkpoint: Mapping) -> Optional[Tuple[OfficialFormat, str]]:
    """``(format, backbone type)`` of an official checkpoint of any registered family, or None."""
    state = official_state_dict(checkpoint)
    for fmt in FORMATS:
        backbone = fmt.detect(state)
        if backbone is not None:
            return fmt, backbone
    return None


def convert_for_model(model: torch.nn.Module, checkpoint, source: Optional[str] = None):
    """The state dict to load into ``model`` from an official checkpoint of our families, converted
    (logged: family, model, entry, key counts); None when the checkpoint is not one or ``model``
    holds none of our backbones. Only the model tells: other libraries read official checkpoints
    whose keys ours share (mmdet's Swin and PVT convert the official Swin and PVT ones
    themselves), so a checkpoint is never converted where it is read. A bare backbone of ours gets
    the converted ``backbone.*`` keys without the prefix."""
    found = recognise(checkpoint) if isinstance(checkpoint, Mapping) else None
    if found is None or not any(type(module) in BACKBONES for module in model.modules()):
        return None
    fmt = found[0]
    converted, summary = fmt.convert_checkpoint(checkpoint, source)
    state = converted['state_dict']
    if type(model) in BACKBONES:
        state = {key[len('backbone.'):]: value for key, value in state.items()
                 if key.startswith('backbone.')}
    where = f' {source!r}' if source else ''
    print_log(f'Converted checkpoint{where} on load into {type(model).__name__}: {summary}; the '
              f'same as `python {fmt.script} SRC DST` writes.', logger='current')
    return state


def describe_keys(state: Mapping, limit: int = 4) -> str:
    keys = list(state)
    if not keys:
        return 'no keys'
    shown = ', '.join(keys[:limit])
    return f'{len(keys)} keys ({shown}{", ..." if len(keys) > limit else ""})'
