"""Verify checkpoints against the sha256 written beside each at save time (``NAME.sha256``): a
file, or every checkpoint of a work dir, with the one ``--resume`` would take. Prints each
checkpoint's state (OK, DAMAGED with why, or no checksum) and exits with status 1 if any is
damaged."""
import argparse
import glob
import os.path as osp
import sys

from groupmix_backbones.engine.checksum import SUFFIX, damage, newest_intact_checkpoint
from groupmix_backbones.safe_checkpoint import CorruptCheckpointError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('paths', nargs='+', help='checkpoint files or work dirs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    damaged = 0
    for path in parse_args(argv).paths:
        files = sorted(glob.glob(osp.join(glob.escape(path), '*.pth'))) if osp.isdir(path) \
            else [path]
        for file in files:
            why = damage(file) if osp.isfile(file) else 'it is missing'
            state = ('no checksum' if not osp.isfile(file + SUFFIX) and why is None
                     else 'OK' if why is None else f'DAMAGED: {why}')
            damaged += why is not None
            print(f'{file}: {state}')
        if osp.isdir(path):
            try:
                resume = newest_intact_checkpoint(path)
            except CorruptCheckpointError as error:
                resume = f'none ({error})'
            print(f'--resume in {path} takes: {resume}')
    return 1 if damaged else 0


if __name__ == '__main__':
    sys.exit(main())
