"""Check every dataset split a config reads (train, val, test) before a run does: annotation files,
class folders and lists, and every image and label map decoded. Prints each problem with its file
and exits with status 1 if there is any."""
import argparse
import sys

from mmengine.config import DictAction
from mmengine.utils import track_iter_progress

import groupmix_backbones  # noqa: F401  registers the backbones
from groupmix_backbones.data_checks import dataset_problems
from groupmix_backbones.runtime import DATALOADERS, load_cfg


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('--splits', nargs='+', choices=DATALOADERS, default=DATALOADERS,
                        help='dataloaders whose datasets to check (default: all the config has)')
    parser.add_argument('--quick', action='store_true',
                        help='do not decode images and label maps (what training checks)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. '
                             'train_dataloader.dataset.data_root=data/coco/')
    parser.set_defaults(local_rank=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_cfg(args)
    checked, total = set(), 0
    for loader in args.splits:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if not dataset or repr(dataset) in checked:  # test_dataloader is often val_dataloader
            continue
        checked.add(repr(dataset))
        print(f'{loader} ({dataset.get("type")}):', flush=True)
        problems = list(dataset_problems(
            dataset, cfg.get('default_scope'), decode=not args.quick,
            progress=lambda files: track_iter_progress(files, file=sys.stdout)))
        print()  # after the progress bar
        for problem in problems:
            print(f'  {problem}')
        print(f'  {len(problems) or "no"} problems', flush=True)
        total += len(problems)
    print(f'{total} problems in all' if total else 'no problems found')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
