"""The converter core: rule tables that rename official checkpoint keys to ours, the recognition of
official checkpoints, and the command line every ``tools/model_converters/*2mmpretrain.py`` runs."""
import argparse
import os.path as osp
import re
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

Target = Union[str, Callable[[re.Match], Optional[str]], None]


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
    """

    def __init__(self, *, family: str, repo: str, script: str,
                 detect: Callable[[Mapping], Optional[str]], rules: Dict[str, Rules],
                 expected: str, arch_of: Optional[Callable[[Mapping, str], str]] = None,
                 adapt: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None):
        self.family, self.repo, self.script = family, repo, script
        self.detect, self.rules, self.expected = detect, rules, expected
        self.arch_of, self.adapt = arch_of, adapt

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
                                      f'({self.repo}); nothing was written.') from None
            if new is not None:
                converted[new] = self.adapt(new, value) if self.adapt else value
        return converted

    def main(self, argv: Optional[Sequence[str]] = None) -> None:
        """``SCRIPT SRC DST``: convert the official checkpoint SRC and save ours to DST."""
        from ..policy.checkpoint import safe_torch_load
        parser = argparse.ArgumentParser(
            description=f'Convert an official {self.family} checkpoint ({self.repo}) into ours: '
            'DST loads strictly into the classifier of our *_in1k.py config and, with '
            "prefix='backbone.', into the detection and segmentation backbones.")
        parser.add_argument('src', help='official checkpoint ({"model": state_dict} or a state dict)')
        parser.add_argument('dst', help='converted checkpoint to write')
        args = parser.parse_args(argv)
        official = official_state_dict(safe_torch_load(args.src, map_location='cpu'))
        backbone, arch = self.identify(official)
        state = self.rename(official, backbone)
        meta = {'converted_from': osp.basename(args.src), 'backbone': backbone}
        if arch:
            meta['arch'] = arch
        torch.save({'state_dict': state, 'meta': meta}, args.dst)
        model = f"{backbone} (arch='{arch}')" if arch else backbone
        print(f'Converted {len(state)} tensors of an official {model} from {args.src} to '
              f'{args.dst}')


FORMATS: List[OfficialFormat] = []


def register_format(fmt: OfficialFormat) -> OfficialFormat:
    FORMATS.append(fmt)
    return fmt


def official_state_dict(checkpoint: Mapping) -> Mapping:
    """The state dict inside an official checkpoint (``model``/``state_dict`` entry, or itself)."""
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def recognise(checkpoint: Mapping) -> Optional[Tuple[OfficialFormat, str]]:
    """``(format, backbone type)`` of an official checkpoint of any registered family, or None."""
    state = official_state_dict(checkpoint)
    for fmt in FORMATS:
        backbone = fmt.detect(state)
        if backbone is not None:
            return fmt, backbone
    return None


def describe_keys(state: Mapping, limit: int = 4) -> str:
    keys = list(state)
    if not keys:
        return 'no keys'
    shown = ', '.join(keys[:limit])
    return f'{len(keys)} keys ({shown}{", ..." if len(keys) > limit else ""})'
