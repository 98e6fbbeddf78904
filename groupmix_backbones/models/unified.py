"""The unified spatial-token-mixer family of "Demystify Transformers & Convolutions in Modern Image
Deep Networks" (TPAMI; OpenGVLab/STM-Evaluation): one architecture whose token mixer is the only
difference. Every model has the same convolutional stem (two 3x3 stride-2 convs) and 3x3 stride-2
downsampling convs, pre-norm blocks with layer scale (``mixer`` then an MLP) and a LayerNorm ending
every stage, which also normalises the stage's output map.

:class:`UnifiedBackbone` builds the architecture around any mixer of the ``MIXERS`` registry
(``mixer=dict(type=..., **settings)``, docs/mixers.md). One registered class per released mixer
(``UnifiedHaloNet``, ``UnifiedPVT``, ``UnifiedSwin``, ``UnifiedConvNeXt``, ``UnifiedInternImage``)
names it with its sizes, settings (heads, windows, kernels) and official checkpoints, so a config
reads ``type='UnifiedSwin', arch='tiny'`` like the paper's names; ``UnifiedGroupMix`` and
``UnifiedFLatten`` put GroupMixFormer's and FLatten's attentions in the same architecture (new
models, no released weights). The mixers are registered in :mod:`.mixers`.

The official detection backbone drops the stage norms and trains a new norm on every returned map
(``stage_norms=False, norm_outputs=True``); every dense config (Mask R-CNN 1x and 3x, UperNet)
builds it, so that the published STM-Evaluation detectors load into the 1x configs (converted on
load) and a model's detectors and segmentors share one backbone. The classifiers keep the stage
norms.
"""
import inspect
from functools import partial
from typing import Dict, Optional

import torch.nn as nn
from timm.layers import trunc_normal_

from ..registry import MIXERS, register_backbone
from .base import DenseBackbone, TokenStage
from .layers import ConvPatchEmbed, GridPositionEmbedding, PreNormBlock, build_norm
from .mixers import DepthwiseConvMixer  # noqa: F401  (registers the mixers; importable here)

#: the official LayerNorm2d over a map's channels: stem, downsampling, stage and output norms
MAP_NORM = dict(type='LN', eps=1e-6)


class ConvStem(nn.Module):
    """Two 3x3 stride-2 convs (to half the width, then the width), each with a LayerNorm, a GELU
    between: an image -> tokens of a ``ceil(H / 4) x ceil(W / 4)`` map and that map's shape."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.conv1 = ConvPatchEmbed(in_channels, dim // 2, kernel_size=3, stride=2, padding=1,
                                    norm_cfg=MAP_NORM)
        self.act = nn.GELU()
        self.conv2 = ConvPatchEmbed(dim // 2, dim, kernel_size=3, stride=2, padding=1,
                                    norm_cfg=MAP_NORM)

    def forward(self, x):
        x, hw_shape = self.conv1(x)
        return self.conv2(self.act(x), hw_shape)


def _sizes(common: dict, /, **sizes: dict) -> Dict[str, dict]:
    return {name: dict(common, **size) for name, size in sizes.items()}


def _widths(width: int):
    return [width * 2 ** i for i in range(4)]


class UnifiedBackbone(DenseBackbone):
    """The unified architecture around any spatial token mixer of
    :data:`~groupmix_backbones.registry.MIXERS`: ``dict(type='UnifiedBackbone', arch='tiny',
    mixer=dict(type='MyMixer', num_heads=[3, 6, 12, 24]))`` (docs/mixers.md). Every block's mixer
    is built as ``Mixer(dim, **settings)`` and called as ``mixer(tokens, hw_shape)`` on tokens
    (B, H*W, C) of a map of ``hw_shape``, row-major.

    The released classes (``UnifiedSwin`` ...) are names over it: each sets its :attr:`arch_zoo`
    (with the mixer's per-stage settings), :attr:`block_norm_eps` (the official eps of its blocks'
    two norms) and :meth:`default_mixer`; a class whose mixer needs the block index (U-Swin's
    shifted windows) extends :meth:`mixer_settings`.

    Args:
        arch (str | dict): ``micro``, ``tiny``, ``small``, ``base`` (the family's widths and
            depths; a released class's own sizes), or a dict with ``embed_dims``, ``depths``,
            optionally ``mlp_ratios`` (one per stage; default 4) and a class's mixer keys
            (:attr:`arch_keys`, :attr:`arch_defaults`).
        mixer (dict, optional): ``type`` (a name registered in ``MIXERS``, or a class) and the
            mixer's settings; a list (or tuple) of one value per stage gives each stage its value.
            A released class builds its own (:meth:`default_mixer`); settings given here
            override its.
        layer_scale_init_value (float): Initial layer scale of both branches of every block
            (official 1e-6); 0 builds none.
        pretrain_img_size (int): The size the grids that depend on it were trained at (U-PVT's
            position embeddings, U-FLatten's key position encodings); other sizes resize them.
        stage_norms (bool): End every stage with a norm the next stage reads (the classifiers);
            False builds none, as the official detection backbone, which drops the ImageNet
            checkpoint's stage norms (left over on load) and norms only what it returns.
        norm_outputs (bool): A new norm on every returned map (the official detection
            backbone's ``out_norm_<i>``); ImageNet checkpoints lack them, they start fresh.
        in_channels, out_indices, frozen_stages, norm_eval, with_cp, drop_path_rate, init_cfg:
            as :class:`DenseBackbone`.
    """

    arch_zoo = dict(  # the widths and depths of U-HaloNet and U-Swin
        micro=dict(embed_dims=_widths(32), depths=[2, 2, 9, 2]),
        tiny=dict(embed_dims=_widths(96), depths=[2, 2, 6, 2]),
        small=dict(embed_dims=_widths(96), depths=[2, 2, 18, 2]),
        base=dict(embed_dims=_widths(128), depths=[2, 2, 18, 2]))
    arch_keys = ('embed_dims', 'depths')
    optional_arch_keys = ('mlp_ratios', )
    norm_places = {'stages': 'stage_norms', 'outputs': 'norm_outputs'}
    block_norm_eps = 1e-5
    mlp_ratio = 4.

    def __init__(self, *, arch='tiny', mixer: Optional[dict] = None, in_channels: int = 3,
                 out_indices=(0, 1, 2, 3), frozen_stages: int = -1, norm_eval: bool = False,
                 with_cp: bool = False, drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6, pretrain_img_size: int = 224,
                 stage_norms: bool = True, norm_outputs: bool = False, init_cfg=None):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices,
                         frozen_stages=frozen_stages, norm_eval=norm_eval, with_cp=with_cp,
                         drop_path_rate=drop_path_rate, init_cfg=init_cfg)
        dims = self.embed_dims = list(self.arch_settings['embed_dims'])
        self.pretrain_grids = [(-(-pretrain_img_size // 2 ** (i + 2)), ) * 2
                               for i in range(self.num_stages)]
        self.mixer = self.resolve_mixer(mixer)
        self.patch_embed = ConvStem(in_channels, dims[0])
        self.stages = nn.ModuleList(
            TokenStage([PreNormBlock(dims[i], attn=self.build_mixer(i, j, dims[i]),
                                     mlp_ratio=self.block_mlp_ratio(i), drop_path_rate=rate,
                                     norm_eps=self.block_norm_eps,
                                     layer_scale_init_value=layer_scale_init_value)
                        for j, rate in enumerate(rates)],
                       downsample=ConvPatchEmbed(dims[i - 1], dims[i], kernel_size=3, stride=2,
                                                 padding=1, bias=False, norm_cfg=MAP_NORM)
                       if i else None,
                       pos_embed=self.build_pos_embed(i, dims[i]))
            for i, rates in enumerate(self.drop_path_rates))
        self.build_output_norms(partial(build_norm, MAP_NORM), stage_norms=stage_norms,
                                norm_outputs=norm_outputs)
        self.finish_build()

    # ------------------------------------------------------------------ the mixer
    def default_mixer(self) -> dict:
        """The mixer config of a released class, from its :attr:`arch_settings`; {} for none."""
        return {}

    def resolve_mixer(self, mixer: Optional[dict]) -> dict:
        """The mixer config: :meth:`default_mixer` updated by ``mixer``; its type registered."""
        name = type(self).__name__
        if mixer is not None and not isinstance(mixer, dict):
            raise TypeError(f"{name} mixer must be a dict such as dict(type='MyMixer', "
                            f"num_heads=[3, 6, 12, 24]), got {type(mixer).__name__}.")
        config = dict(self.default_mixer(), **(mixer or {}))
        mixer_type = config.get('type')
        if isinstance(mixer_type, type):
            return config
        if mixer_type is None or MIXERS.get(mixer_type) is None:
            raise KeyError(f'{name} needs mixer=dict(type=<a registered mixer>, ...settings); '
                           f'got type {mixer_type!r}. Registered mixers: '
                           f'{", ".join(sorted(MIXERS.module_dict))}. A mixer in your own file '
                           f"registers with @MIXERS.register_module() and is imported by the "
                           f"config's custom_imports=dict(imports=['my_mixer']) (docs/mixers.md).")
        return config

    def mixer_settings(self, stage: int, index: int) -> dict:
        """The settings of the mixer of block ``index`` of ``stage``: the mixer config's, a list
        of one value per stage taken at ``stage``."""
        n = self.num_stages
        return {key: value[stage] if isinstance(value, (list, tuple)) and len(value) == n
                else value for key, value in self.mixer.items() if key != 'type'}

    def build_mixer(self, stage: int, index: int, dim: int) -> nn.Module:
        """The token mixer of block ``index`` of ``stage``: ``Mixer(dim, **settings)``."""
        mixer_type = self.mixer['type']
        mixer_cls = mixer_type if isinstance(mixer_type, type) else MIXERS.get(mixer_type)
        settings = self.mixer_settings(stage, index)
        try:
            return mixer_cls(dim, **settings)
        except TypeError as error:  # an unknown or missing setting
            raise TypeError(f'{type(self).__name__} could not build its mixer '
                            f'{mixer_cls.__name__}(dim={dim}, **{settings}) of stage {stage}: '
                            f'{error}. Its settings: {inspect.signature(mixer_cls)}.') from error

    def build_pos_embed(self, stage: int, dim: int):
        """A position embedding added after the stage's downsampling (U-PVT), or None."""
        return None

    def block_mlp_ratio(self, stage: int) -> float:
        return self.arch_settings.get('mlp_ratios', [self.mlp_ratio] * self.num_stages)[stage]

    def saved_arch(self, state_dict, prefix: str):
        """The named arch whose depths and widths (of the blocks' first norms) ``state_dict``
        holds under ``prefix``; otherwise those depths and widths."""
        depths, widths = [], []
        while f'{prefix}stages.{len(depths)}.blocks.0.norm1.weight' in state_dict:
            stage = f'{prefix}stages.{len(depths)}.blocks.'
            widths.append(int(state_dict[f'{stage}0.norm1.weight'].shape[0]))
            depths.append(1 + max(int(key[len(stage):].split('.', 1)[0])
                                  for key in state_dict if key.startswith(stage)))
        if not depths:
            return None
        name = type(self).__name__
        for arch, settings in self.arch_zoo.items():
            if list(settings['depths']) == depths and list(settings['embed_dims']) == widths:
                return f"{name}(arch='{arch}')"
        return f'a {name} of depths {depths} and widths {widths}'

    def init_module(self, module: nn.Module):
        """The official initialisation: truncated normal (std 0.02) for every conv and linear
        layer (the deformable layers' own init included, as the official model overrides it), unit
        LayerNorm, truncated normal position embeddings."""
        super().init_module(module)
        if isinstance(module, nn.Conv2d):
            trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, GridPositionEmbedding):
            trunc_normal_(module.weight, std=.02)


@register_backbone
class UnifiedPVT(UnifiedBackbone):
    """U-PVT: PVT's spatial-reduction attention in the unified architecture, with PVT's absolute
    position embedding at the start of every stage.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths``,
    ``num_heads``, ``mlp_ratios`` and ``sr_ratios``. Other arguments: :class:`UnifiedBackbone`.
    """

    arch_zoo = _sizes(
        dict(embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
             sr_ratios=[8, 4, 2, 1]),
        micro=dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 3, 2]),
        tiny=dict(depths=[3, 4, 9, 3]),
        small=dict(depths=[3, 4, 21, 3]),
        base=dict(depths=[3, 8, 45, 3], mlp_ratios=[4, 4, 4, 4]))
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')

    def default_mixer(self):
        settings = self.arch_settings
        return dict(type='SpatialReductionAttention', num_heads=settings['num_heads'],
                    sr_ratio=settings['sr_ratios'])

    def build_pos_embed(self, stage, dim):
        return GridPositionEmbedding(dim, grid=self.pretrain_grids[stage])


_LOCAL_ATTENTION = dict(  # U-HaloNet's and U-Swin's sizes
    micro=dict(embed_dims=_widths(32), depths=[2, 2, 9, 2], num_heads=[1, 2, 4, 8]),
    tiny=dict(embed_dims=_widths(96), depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
    small=dict(embed_dims=_widths(96), depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
    base=dict(embed_dims=_widths(128), depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32]))


@register_backbone
class UnifiedHaloNet(UnifiedBackbone):
    """U-HaloNet: HaloNet's blocked local attention (:class:`~.layers.HaloAttention`: each 7x7 block
    of queries attends to the 13x13 window around it, with query-related relative logits) in the
    unified architecture. Maps of any size are padded to block multiples and every key outside the
    real map is masked; relative tables saved for another window are resized on load.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths``,
    ``num_heads`` and optionally ``block_size`` and ``halo_size``. Other arguments:
    :class:`UnifiedBackbone`.
    """

    arch_zoo = _LOCAL_ATTENTION
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    arch_defaults = dict(block_size=7, halo_size=3)

    def default_mixer(self):
        settings = self.arch_settings
        return dict(type='HaloAttention', num_heads=settings['num_heads'],
                    block_size=settings['block_size'], halo_size=settings['halo_size'])


@register_backbone
class UnifiedSwin(UnifiedBackbone):
    """U-Swin: Swin's (shifted) window attention in the unified architecture; every second block
    shifts its windows by half a window. Maps of any size are padded to window multiples and the
    padding masked.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths``,
    ``num_heads`` and optionally ``window_size``. Other arguments: :class:`UnifiedBackbone`.
    """

    arch_zoo = _LOCAL_ATTENTION
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    arch_defaults = dict(window_size=7)
    block_norm_eps = 1e-6

    def default_mixer(self):
        settings = self.arch_settings
        return dict(type='ShiftedWindowAttention', num_heads=settings['num_heads'],
                    window_size=settings['window_size'])

    def mixer_settings(self, stage, index):
        return dict(super().mixer_settings(stage, index), shifted=index % 2 == 1)


@register_backbone
class UnifiedConvNeXt(UnifiedBackbone):
    """U-ConvNeXt: a depthwise conv between two pointwise projections as the token mixer of the
    unified (transformer-style) block, unlike ConvNeXt's own block.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths`` and
    optionally ``kernel_size``. Other arguments: :class:`UnifiedBackbone`.
    """

    arch_zoo = dict(
        micro=dict(embed_dims=_widths(32), depths=[3, 3, 8, 3]),
        tiny=dict(embed_dims=_widths(96), depths=[2, 2, 9, 2]),
        small=dict(embed_dims=_widths(96), depths=[2, 2, 24, 2]),
        base=dict(embed_dims=_widths(128), depths=[2, 2, 24, 2]))
    arch_defaults = dict(kernel_size=7)
    block_norm_eps = 1e-6

    def default_mixer(self):
        return dict(type='DepthwiseConvMixer', kernel_size=self.arch_settings['kernel_size'])


@register_backbone
class UnifiedInternImage(UnifiedBackbone):
    """U-InternImage: DCNv3 (:class:`~.layers.DCNv3`: per head, a softmax-weighted sum of samples at
    learned points around each pixel, after a depthwise conv of the query) in the unified
    architecture. On CUDA it samples through mmcv's compiled deformable attention op, elsewhere
    through ``grid_sample``.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths``,
    ``num_heads`` and optionally ``kernel_size`` (of the depthwise conv) and ``points`` (a square
    number). Other arguments: :class:`UnifiedBackbone`.
    """

    arch_zoo = dict(
        micro=dict(embed_dims=_widths(32), depths=[2, 2, 9, 2], num_heads=[2, 4, 8, 16]),
        tiny=dict(embed_dims=_widths(64), depths=[4, 4, 18, 4], num_heads=[4, 8, 16, 32]),
        small=dict(embed_dims=_widths(80), depths=[4, 4, 21, 4], num_heads=[5, 10, 20, 40]),
        base=dict(embed_dims=_widths(112), depths=[4, 4, 21, 4], num_heads=[7, 14, 28, 56]))
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    arch_defaults = dict(kernel_size=3, points=9)

    def default_mixer(self):
        settings = self.arch_settings
        return dict(type='DCNv3', num_heads=settings['num_heads'],
                    kernel_size=settings['kernel_size'], points=settings['points'])


register_backbone(UnifiedBackbone, catalogued=False)  # the contract tests walk it per mixer


@register_backbone
class UnifiedGroupMix(UnifiedBackbone):
    """U-GroupMix: GroupMixFormer's group-mix attention (:class:`~.layers.GroupMixAttention`) in
    the unified architecture; a new model, no released weights. Its widths are multiples of 5 (the
    attention's five channel groups) just under the family's (30 / 90 / 120 for 32 / 96 / 128),
    heads of 24 channels of the attended four fifths, and one to two more blocks in stage 3, so
    that every size's parameters and FLOPs at 224 lie within 10% of the family's (docs/mixers.md).

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths`` and
    ``num_heads``. Other arguments: :class:`UnifiedBackbone` (``mixer=dict(norm_cfg=...)`` sets
    the norm of the group aggregators, BatchNorm as the official).
    """

    arch_zoo = dict(
        micro=dict(embed_dims=_widths(30), depths=[2, 2, 10, 2], num_heads=[1, 2, 4, 8]),
        tiny=dict(embed_dims=_widths(90), depths=[2, 2, 7, 2], num_heads=[3, 6, 12, 24]),
        small=dict(embed_dims=_widths(90), depths=[2, 2, 20, 2], num_heads=[3, 6, 12, 24]),
        base=dict(embed_dims=_widths(120), depths=[2, 2, 20, 2], num_heads=[4, 8, 16, 32]))
    arch_keys = ('embed_dims', 'depths', 'num_heads')

    def default_mixer(self):
        return dict(type='GroupMixAttention', num_heads=self.arch_settings['num_heads'])


@register_backbone
class UnifiedFLatten(UnifiedBackbone):
    """U-FLatten: FLatten's focused linear attention over the whole map
    (:class:`~.mixers.FocusedLinearMixer`, linear in the number of tokens) in the unified
    architecture, with U-Swin's widths, heads and depths (micro: 8 blocks in stage 3, not 9, for
    its key position encodings' parameters); a new model, no released weights. Its learned key
    position encodings are laid out for ``pretrain_img_size`` and interpolated to other maps.

    ``arch``: ``micro``, ``tiny``, ``small``, ``base`` or a dict with ``embed_dims``, ``depths``,
    ``num_heads`` and optionally ``focusing_factor`` (3) and ``kernel_size`` (5, of the
    rank-restoring depthwise conv). Other arguments: :class:`UnifiedBackbone`.
    """

    arch_zoo = dict(_LOCAL_ATTENTION, micro=dict(_LOCAL_ATTENTION['micro'], depths=[2, 2, 8, 2]))
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    arch_defaults = dict(focusing_factor=3, kernel_size=5)

    def default_mixer(self):
        settings = self.arch_settings
        return dict(type='FocusedLinearMixer', num_heads=settings['num_heads'],
                    pos_hw=self.pretrain_grids, focusing_factor=settings['focusing_factor'],
                    kernel_size=settings['kernel_size'])
