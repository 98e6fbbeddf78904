"""Which parameters take no weight decay: declared by the layers that own them, collected by the
model as timm's ``no_weight_decay()`` (a set of full parameter names), so configs need not list
them."""
from typing import Set


class NoWeightDecay:
    """Mixin of models: :meth:`no_weight_decay` collects the ``no_weight_decay_params`` (names of
    its own parameters) that any submodule declares."""

    def no_weight_decay(self) -> Set[str]:
        """Names, as ``named_parameters()`` gives them, of the parameters that take no decay."""
        return {f'{prefix}.{name}' if prefix else name
                for prefix, module in self.named_modules()
                for name in getattr(module, 'no_weight_decay_params', ())}
