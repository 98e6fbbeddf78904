"""Task models built from our configs for analysis: no pretrained weights, BN for SyncBN."""
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from ..runtime import iter_dicts, replace_sync_bn


def build_model(config):
    """``(model in eval mode, default scope)`` of a config path or Config, every ``init_cfg`` of
    type Pretrained dropped (random weights)."""
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    replace_sync_bn(cfg.model)
    for _, node in iter_dicts(cfg.model):
        init = node.get('init_cfg')
        if isinstance(init, (list, tuple)):
            node['init_cfg'] = [c for c in init if c.get('type') != 'Pretrained'] or None
        elif isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
    scope = cfg.get('default_scope', 'mmengine')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    return model.eval(), scope


class TensorForward(torch.nn.Module):
    """Wraps a task model so that a call runs its plain tensor forward on an image batch."""

    def __init__(self, model, scope, shape):
        super().__init__()
        self.model, self.scope, self.shape = model, scope, tuple(shape)

    def forward(self, inputs):
        if self.scope == 'mmdet':
            from mmdet.structures import DetDataSample
            meta = dict(img_shape=self.shape, ori_shape=self.shape, pad_shape=self.shape,
                        batch_input_shape=self.shape, scale_factor=(1., 1.))
            return self.model._forward(inputs, [DetDataSample(metainfo=meta) for _ in inputs])
        return self.model(inputs, mode='tensor')
