"""Parameters and FLOPs of any groupmix_backbones config, counted by mmengine's analysis (fvcore's
rules: one multiply-add is one FLOP).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W]
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

sys.path.insert(0, osp.join(osp.dirname(__file__), '..', '..'))
import groupmix_backbones  # noqa: E402,F401
from groupmix_backbones.runtime import replace_sync_bn  # noqa: E402


class TensorForward(torch.nn.Module):
    """Wraps a task model so that a traced call runs its plain tensor forward."""

    def __init__(self, model, scope, shape):
        super().__init__()
        self.model, self.scope, self.shape = model, scope, shape

    def forward(self, inputs):
        if self.scope == 'mmdet':
            from mmdet.structures import DetDataSample
            meta = dict(img_shape=self.shape, ori_shape=self.shape, pad_shape=self.shape,
                        batch_input_shape=self.shape, scale_factor=(1., 1.))
            return self.model._forward(inputs, [DetDataSample(metainfo=meta) for _ in inputs])
        return self.model(inputs, mode='tensor')


def build_model(config):
    cfg = Config.fromfile(config)
    replace_sync_bn(cfg.model)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    scope = cfg.get('default_scope', 'mmengine')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    return model.eval(), scope


def count(config, shape):
    """Return (parameters, FLOPs) of ``config``'s model on one 3 x H x W input."""
    model, scope = build_model(config)
    wrapped = TensorForward(model, scope, tuple(shape))
    with torch.no_grad():
        analyzer = FlopAnalyzer(wrapped, torch.randn(1, 3, *shape))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = analyzer.total()
    return parameter_count(model)[''], flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: 224 224 for classifiers, 512 512 otherwise)')
    args = parser.parse_args()
    default_scope = Config.fromfile(args.config).get('default_scope')
    shape = args.shape or ((224, 224) if default_scope == 'mmpretrain' else (512, 512))
    params, flops = count(args.config, shape)
    print(f'Config: {args.config}\nInput shape: (3, {shape[0]}, {shape[1]})\n'
          f'Params: {params / 1e6:.2f}M ({params:,})\nFLOPs: {flops / 1e9:.2f}G')


if __name__ == '__main__':
    main()
