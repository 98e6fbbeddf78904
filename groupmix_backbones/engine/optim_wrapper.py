"""The optimizer-wrapper constructor of the recipes: the backbone says which of its parameters take
no weight decay (``no_weight_decay()``, timm's contract), so configs need not repeat them in
``paramwise_cfg.custom_keys``."""
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class NoWeightDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (``paramwise_cfg`` as usual), then weight decay 0 for the
    parameters that ``no_weight_decay()`` of the model's backbone (``model.backbone``, or the model
    itself) names; their learning rate stays what ``paramwise_cfg`` gives them. Registered in
    mmengine's registry, so every scope finds it."""
    _no_decay = frozenset()  # ids of the parameters without decay, set per call

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = getattr(model, 'module', model)  # a DDP-wrapped model, as the default unwraps it
        backbone = getattr(model, 'backbone', model)
        names = backbone.no_weight_decay() if hasattr(backbone, 'no_weight_decay') else ()
        self._no_decay = {id(param) for name, param in backbone.named_parameters() if name in names}
        if self._no_decay and not self.paramwise_cfg:
            self.paramwise_cfg = dict(custom_keys={})  # one group per parameter, nothing else
        return super().__call__(model)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs):
        super().add_params(params, module, prefix, **kwargs)
        if not prefix:  # the whole model has its groups
            for group in params:
                if any(id(param) in self._no_decay for param in group['params']):
                    group['weight_decay'] = 0.
