"""Check that our classifier computes what the official implementation computes.

    python tools/analysis_tools/compare_official.py --official-repo PATH CONFIG [--tolerance 1e-4]

PATH is a clone of the family's official repository (AILab-CVC/GroupMixFormer, LeapLabTHU/FLatten-
Transformer, OliverRensu/SG-Former, OpenGVLab/STM-Evaluation), imported from there, never vendored;
its own requirements (timm, einops) must be installed. STM-Evaluation's code, written for timm
0.6.7 and a CUDA extension, runs beside timm 1.x with the adaptations in
``groupmix_backbones/analysis/official.py`` (DCNv3's op stood in by mmcv's PyTorch reference). The official model of CONFIG's arch is built with random weights
and randomised norm statistics, converted with our converter, loaded strictly into the classifier of
CONFIG (an ``mmpretrain_cfgs/*_in1k.py``), and both run in eval mode on the same random images at
the arch's pre-training size (in float64 for SG-Former, whose token sorting float32 rounding
reorders with random weights; see ``groupmix_backbones/analysis/official.py``). Prints the largest
logit difference; exits 1 above the tolerance.
"""
import argparse
import sys

from groupmix_backbones.analysis.official import compare


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='our classifier config')
    parser.add_argument('--official-repo', required=True, help='clone of the official repository')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    diff, size = compare(args.config, args.official_repo, seed=args.seed)
    verdict = 'equal within' if diff <= args.tolerance else 'DIFFERENT beyond'
    print(f'{args.config}: max |logit difference| at {size}x{size} = {diff:.3g} '
          f'({verdict} {args.tolerance:g})')
    return 0 if diff <= args.tolerance else 1


if __name__ == '__main__':
    sys.exit(main())
