"""What the FLatten hosts share: the host base class; focused linear attention
(:class:`~..layers.FocusedLinearAttention`, shared with the unified family's U-FLatten)."""
from functools import partial

from timm.layers import trunc_normal_

from ..base import DenseBackbone
from ..layers import FocusedLinearAttention, ProjectedLinearAttention, build_norm

__all__ = ['FLattenBackbone', 'FocusedLinearAttention', 'ProjectedLinearAttention']


class FLattenBackbone(DenseBackbone):
    """Base of the FLatten hosts; a host sets its archs, ``default_attn_types`` and builds its
    stem and stages in :meth:`build_layers`.

    Args:
        arch (str | dict): A named arch of the host (its first by default) or a dict of settings;
            ``attn_types`` gives each stage ``L`` (focused linear) or ``S`` (the host's softmax
            attention), ``pretrain_img_size`` the size its learned position encodings are laid
            out for.
        in_channels (int): Input channels. Defaults to 3.
        pretrain_img_size (int, optional): Overrides the arch's; at least 32. Other input
            sizes interpolate the position encodings; checkpoints of other sizes load resized.
        qkv_bias (bool): Bias of the q, k, v projections. Defaults to True.
        focusing_factor (float): Power of the focused kernel. Defaults to 3.
        kernel_size (int): Kernel of the depthwise rank-restoring conv. Defaults to 5.
        drop_rate / attn_drop_rate / drop_path_rate (float): Dropouts and stochastic depth.
        final_norm (bool): LayerNorm the last output (the classifier's norm). Defaults to False.
        norm_outputs (bool): A new LayerNorm on every returned map, as mmdet's Swin, for dense
            prediction (the stages end unnormalised). Defaults to False.
        norm_cfg (dict): Norm of the tokens: LayerNorm, each place keeping its official eps
            unless ``norm_cfg`` sets one.
        out_indices, frozen_stages, norm_eval, with_cp, init_cfg: see :class:`DenseBackbone`.
    """

    default_attn_types = None  # linear everywhere
    arch_defaults = dict(pretrain_img_size=224)
    out_norm_eps = 1e-5

    def __init__(self, arch=None, in_channels=3, pretrain_img_size=None, qkv_bias=True,
                 focusing_factor=3, kernel_size=5, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
                 final_norm=False, norm_outputs=False, norm_cfg=dict(type='LN'), with_cp=False,
                 init_cfg=None):
        super().__init__(arch=arch or next(iter(self.arch_zoo)), in_channels=in_channels,
                         out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval, with_cp=with_cp, drop_path_rate=drop_path_rate,
                         init_cfg=init_cfg)
        name, settings, n = type(self).__name__, self.arch_settings, self.num_stages
        attn_types = settings.get('attn_types', self.default_attn_types or 'L' * n)
        if not isinstance(attn_types, str) or len(attn_types) != n or set(attn_types) - set('LS'):
            raise ValueError(f'{name} attn_types must give L (focused linear) or S (softmax) for '
                             f'each of the {n} stages, got {attn_types!r}.')
        size = pretrain_img_size or settings['pretrain_img_size']
        if not isinstance(size, int) or size < 2 ** (n + 1):
            raise ValueError(f'{name} pretrain_img_size must be an int of at least {2 ** (n + 1)} '
                             f'(one token in the last stage), got {size!r}.')
        if dict(norm_cfg).get('type') != 'LN':
            raise ValueError(f"{name} norms tokens over their channels: norm_cfg must be of type "
                             f"'LN' (e.g. dict(type='LN', eps=1e-6)), got {norm_cfg!r}.")
        self.attn_types = attn_types
        self.grids = [(size // 2 ** (i + 2), ) * 2 for i in range(n)]
        self.norm_cfg = dict(norm_cfg)
        self.block_options = dict(qkv_bias=qkv_bias, focusing_factor=focusing_factor,
                                  kernel_size=kernel_size, drop_rate=drop_rate,
                                  attn_drop_rate=attn_drop_rate, norm_cfg=self.norm_cfg)
        self.build_layers(in_channels=in_channels, drop_rate=drop_rate)
        self.build_output_norms(partial(build_norm, self.norm_cfg, eps=self.out_norm_eps),
                                final_norm=final_norm, norm_outputs=norm_outputs)
        self.finish_build()

    def build_layers(self, *, in_channels, drop_rate):
        """Set ``embed_dims``, ``patch_embed`` and ``stages`` (blocks take ``block_options``)."""
        raise NotImplementedError

    def init_module(self, module):
        super().init_module(module)
        for name in ('pos_embed', 'rel_pos_table'):
            param = module._parameters.get(name)
            if param is not None:
                trunc_normal_(param, std=.02)
