"""What every backbone family shares: :class:`DenseBackbone` (arch resolution, stage options, the
stage loop, output norms, init and checkpoint checks) and the stages it chains (:class:`Stage`,
:class:`TokenStage`)."""
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmengine.model.weight_init import PretrainedInit
from timm.layers import trunc_normal_
from torch.nn.modules.batchnorm import _BatchNorm

from .layers import Fusable, adapt_saved_grids, drop_path_schedule, fuse_modules
from .layers.decay import NoWeightDecay
from .loading import check_backbone_state, load_pretrained


#: the places output norms sit, with their checkpoint keys (see build_output_norms)
NORM_PLACES = {'stages': 'stages.<i>.norm.', 'last': 'out_norm.', 'outputs': 'output_norms.'}


class ArchError(KeyError):
    """An unknown arch name or a custom arch dict with missing or unknown keys."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class Stage(nn.Module):
    """A stage runs itself: ``forward`` takes NHWC maps (B, H, W, C), tokens that carry their
    map's shape, and returns NHWC maps, so that the backbone's loop only chains stages (as timm's
    ``SwinTransformerStage``). Blocks run through :meth:`run_block` (activation checkpointing when
    the backbone's ``with_cp`` asks for it)."""

    with_cp = False  # set by the backbone

    def run_block(self, block: nn.Module, *args):
        """Call ``block``, through activation checkpointing when ``with_cp`` and training."""
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(block, *args, use_reentrant=False)
        return block(*args)


class TokenStage(Stage):
    """The stage of the token families, on NHWC maps: an optional downsampling layer (tokens and
    map shape in and out), an optional position embedding (``pos_embed(tokens, hw_shape)``), the
    blocks on tokens (B, N, C) with their map's shape, and an optional norm ending the stage."""

    def __init__(self, blocks: Sequence[nn.Module], *, downsample: Optional[nn.Module] = None,
                 pos_embed: Optional[nn.Module] = None, norm: Optional[nn.Module] = None):
        super().__init__()
        self.downsample = downsample
        self.pos_embed = pos_embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw_shape = x.flatten(1, 2), tuple(x.shape[1:3])
        if self.downsample is not None:
            x, hw_shape = self.downsample(x, hw_shape)
        if self.pos_embed is not None:
            x = self.pos_embed(x, hw_shape)
        x = self.forward_blocks(x, hw_shape)
        if self.norm is not None:
            x = self.norm(x)
        return x.reshape(x.shape[0], *hw_shape, x.shape[-1])

    def forward_blocks(self, x: torch.Tensor, hw_shape) -> torch.Tensor:
        """The blocks in turn, each called as ``block(tokens, hw_shape)``."""
        for block in self.blocks:
            x = self.run_block(block, x, hw_shape)
        return x


class DenseBackbone(Fusable, NoWeightDecay, BaseModule):
    """Base of every backbone: maps at strides 4/8/16/32 for any input size.

    A family sets :attr:`arch_zoo` (named archs), :attr:`arch_keys` (what a custom arch dict must
    give; ``depths`` among them), :attr:`optional_arch_keys` and :attr:`arch_defaults`, builds its
    stem (the module named :attr:`stem_name`) and ``stages`` (:class:`Stage` modules), sets
    :attr:`embed_dims` (channels per stage) and may ask for output norms
    (:meth:`build_output_norms`). The forward is the same for every family: the stem, then each
    stage on the previous one's maps; a returned map is its stage's maps through the stage's output
    norm (:meth:`stage_output`), as (B, C, H, W).

    Args:
        arch (str | dict): A name of :attr:`arch_zoo` or a dict of settings.
        out_indices (Sequence[int]): Stages whose outputs are returned (negative: from the end).
        frozen_stages (int): Freeze the stem and stages ``1..k`` with their output norms,
            keeping them in eval mode; -1 freezes nothing.
        norm_eval (bool): Keep every BatchNorm in eval mode while training.
        with_cp (bool): Activation checkpointing of each block while training.
        drop_path_rate (float): Stochastic depth of the last block, rising linearly from 0.
        init_cfg (dict | list[dict], optional): mmengine init configs; ``Pretrained`` loads a
            checkpoint after the family's own initialisation and any other init config.
    """

    arch_zoo: Dict[str, dict] = {}
    arch_keys: Tuple[str, ...] = ('depths', )
    optional_arch_keys: Tuple[str, ...] = ()
    #: optional arch keys with one default for every arch (the arch table's only statement of it)
    arch_defaults: Dict[str, object] = {}
    #: the attribute holding the stem, which checkpoints name: an image -> tokens (B, N, C) and
    #: their map's shape, the first stage's input
    stem_name = 'patch_embed'
    #: the version of the family's checkpoint keys, saved in a state dict's metadata (torch's
    #: ``_version``); :attr:`key_renames` bring the keys of older versions to it
    _version = 1
    #: version v -> ``(pattern, replacement)`` regexes (``re.sub`` on the key under the
    #: backbone's prefix) taking the keys of version ``v - 1`` to those of ``v``; written so that
    #: they leave keys of ``v`` alone (a checkpoint without metadata may hold either)
    key_renames: Dict[int, Sequence[Tuple[str, str]]] = {}
    #: where the family's output norms may sit (:data:`NORM_PLACES`), each with the option of
    #: ``__init__`` that builds them (None: always built); :meth:`build_output_norms` builds them
    #: and the checkpoint keys it may leave over or miss follow
    norm_places: Dict[str, Optional[str]] = {'last': 'final_norm', 'outputs': 'norm_outputs'}

    def __init__(self, *, arch: Union[str, dict], in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, drop_path_rate: float = 0.,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        self.arch_settings = self.resolve_arch(arch)
        depths = self.arch_settings['depths']
        num_stages = len(depths)
        self.num_stages = num_stages
        self.in_channels = in_channels
        self.out_indices = self._check_out_indices(out_indices)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name} frozen_stages must be an int in [-1, {num_stages}], got '
                             f'{frozen_stages!r}.')
        if not 0 <= drop_path_rate <= 1:
            raise ValueError(f'{name} drop_path_rate must be in [0, 1], got {drop_path_rate}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.drop_path_rates = drop_path_schedule(drop_path_rate, depths)
        self.embed_dims: List[int] = []
        self.out_norm: Optional[nn.Module] = None
        self.output_norms: Optional[nn.ModuleDict] = None
        self.norms_at: Tuple[str, ...] = ()
        self.fused = False

    # ------------------------------------------------------------------ arch and options
    @classmethod
    def resolve_arch(cls, arch: Union[str, dict]) -> dict:
        """The settings of ``arch``: a copy of a named arch, or a checked custom dict (required
        keys present, no unknown key, every per-stage list as long as ``depths``)."""
        name = cls.__name__
        valid = list(cls.arch_keys) + list(cls.optional_arch_keys) + list(cls.arch_defaults)
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ArchError(f'Unknown {name} arch {arch!r}. Valid names: '
                               f'{", ".join(cls.arch_zoo)}; or pass a dict with keys {valid}.')
            return dict(cls.arch_defaults, **cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'{name} arch must be a name or a dict, got {type(arch).__name__}.')
        missing = [key for key in cls.arch_keys if key not in arch]
        unknown = [key for key in arch if key not in valid]
        if missing or unknown:
            problems = [f'{kind} {keys}' for kind, keys in (('missing', missing),
                                                            ('unknown', unknown)) if keys]
            raise ArchError(f'{name} arch dict: {"; ".join(problems)}. Required keys: '
                            f'{list(cls.arch_keys)}; optional: {valid[len(cls.arch_keys):]}.')
        depths = arch['depths']
        if 'embed_dims' in arch and not isinstance(arch['embed_dims'], (list, tuple)):
            raise ValueError(f'{name} arch embed_dims must give the channels of each stage, e.g. '
                             f'{cls.resolve_arch(next(iter(cls.arch_zoo)))["embed_dims"]}, got '
                             f'{arch["embed_dims"]!r}.')
        if not isinstance(depths, (list, tuple)) or not depths or \
                not all(isinstance(d, int) and d > 0 for d in depths):
            raise ValueError(f'{name} arch depths must be a list of positive ints, got {depths!r}.')
        uneven = {key: len(value) for key, value in arch.items()
                  if isinstance(value, (list, tuple)) and len(value) != len(depths)}
        if uneven:
            raise ValueError(f'{name} arch lists must give one value per stage ({len(depths)} '
                             f'stages, from depths); lengths: {uneven}.')
        return dict(cls.arch_defaults, **arch)

    def _check_out_indices(self, out_indices) -> Tuple[int, ...]:
        name, n = type(self).__name__, self.num_stages
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise TypeError(f'{name} out_indices must be a non-empty sequence of ints, got '
                            f'{out_indices!r}.')
        for index in out_indices:
            if not isinstance(index, int) or not -n <= index < n:
                raise ValueError(f'{name} out_indices {tuple(out_indices)} invalid: each must be an '
                                 f'int in [{-n}, {n - 1}] ({n} stages).')
        return tuple(sorted({index % n for index in out_indices}))

    @property
    def out_channels(self) -> List[int]:
        """Channels of each returned map, in order (what a neck's ``in_channels`` must be)."""
        return [self.embed_dims[i] for i in self.out_indices]

    @property
    def feature_info(self) -> List[dict]:
        """Per returned map: channels, stride, stage index and module (as timm's ``feature_info``)."""
        return [dict(num_chs=self.embed_dims[i], reduction=2 ** (i + 2), stage=i,
                     module=f'stages.{i}')
                for i in self.out_indices]

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The maps of the ``out_indices`` stages; stages past the last of them are not run."""
        return tuple(self.forward_intermediates(x, self.out_indices, stop_early=True,
                                                intermediates_only=True))

    def forward_intermediates(self, x: torch.Tensor, indices=None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """timm's (>= 1.0) contract: the maps (B, C, H, W) of the stages in ``indices`` (None: all;
        an int n: the last n; negative: from the end), each through its output norm, and unless
        ``intermediates_only`` the map of the last stage run as well. ``stop_early`` skips the
        stages past the last requested one. ``norm`` is accepted for timm's signature: a map is
        normed when the backbone norms it."""
        if output_fmt != 'NCHW':
            raise ValueError(f'{type(self).__name__} returns NCHW maps, not {output_fmt!r}.')
        take = self.take_indices(indices)
        last = max(take) if stop_early else self.num_stages - 1
        self.check_input(x)
        x = self.forward_stem(x)
        intermediates = []
        for i in range(last + 1):
            x = self.stages[i](x)
            if i in take:
                intermediates.append(self.stage_output(i, x))
        if intermediates_only:
            return intermediates
        return self.stage_output(last, x), intermediates

    def take_indices(self, indices=None) -> List[int]:
        """Stage indices as timm's ``feature_take_indices``: None for all, an int n for the last
        n, a sequence of (possibly negative) indices."""
        n = self.num_stages
        if indices is None:
            return list(range(n))
        if isinstance(indices, int):
            if not 0 < indices <= n:
                raise ValueError(f'{type(self).__name__}: indices={indices} asks for the last '
                                 f'{indices} stages of {n}.')
            return list(range(n - indices, n))
        return list(self._check_out_indices(indices))

    def check_input(self, x):
        """A ValueError naming the shape unless ``x`` is an image batch (B >= 1, in_channels, H,
        W). Not while tracing or compiling: an FX proxy has no shape to check, and a check of
        symbolic sizes would only add guards (the traced ops reject a wrong input anyway)."""
        if isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling():
            return
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[0] < 1 or \
                x.shape[1] != self.in_channels or min(x.shape[2:]) < 1:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f'{type(self).__name__} expects images (batch >= 1, '
                             f'{self.in_channels}, H, W), got {shape}.')

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> the first stage's input, an NHWC map (the stem's tokens and map shape)."""
        tokens, hw_shape = self.get_submodule(self.stem_name)(x)
        return tokens.reshape(tokens.shape[0], *hw_shape, tokens.shape[-1])

    def stage_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """The returned map of stage ``index`` from its NHWC maps ``x``: through
        :meth:`output_norm`'s norm (a LayerNorm on the channels last, any other norm, such as
        BN or GN, on the channels-first view), as a contiguous (B, C, H, W) tensor: compiled ops
        downstream (mmcv's RoIAlign, CPU and CUDA) index memory as contiguous NCHW, reading the
        channels_last maps of the stages wrongly without an error."""
        norm = self.output_norm(index)
        channels_last = isinstance(norm, nn.LayerNorm)
        if channels_last:
            x = norm(x)
        x = x.permute(0, 3, 1, 2)
        if norm is not None and not channels_last:
            x = norm(x)
        return x.contiguous()

    def output_norm(self, index: int) -> Optional[nn.Module]:
        """The output norm of stage ``index`` (:meth:`build_output_norms`), or None."""
        if self.output_norms is not None:
            return self.output_norms[str(index)] if str(index) in self.output_norms else None
        return self.out_norm if index == self.num_stages - 1 else None

    def build_output_norms(self, make_norm, **options: bool):
        """Norms ``make_norm(channels)`` at the family's :attr:`norm_places` whose option is
        among ``options`` and true, or which have no option: ``'stages'`` ends every stage with
        one (``stages.<i>.norm``; the next stage reads it), ``'last'`` norms the last stage's map
        (``out_norm``, the classifier's), ``'outputs'`` every returned map (``output_norms``;
        mmdet's Swin has them too: dense heads shared across levels, such as the RPN's, train
        unstably on stage outputs of very different scales)."""
        name = type(self).__name__
        unknown = [option for option, on in options.items()
                   if on and option not in self.norm_places.values()]
        if unknown:
            every_stage = ': every stage ends in its own norm' if 'stages' in self.norm_places \
                else ''
            raise ValueError(f'{name} has no {unknown[0]}{every_stage}.')
        self.norms_at = tuple(place for place, option in self.norm_places.items()
                              if option is None or options.get(option))
        if {'last', 'outputs'} <= set(self.norms_at):
            last, outputs = self.norm_places['last'], self.norm_places['outputs']
            raise ValueError(f'{name}: {last} and {outputs} are exclusive ({outputs} norms the '
                             f'last output too); choose one.')
        if 'stages' in self.norms_at:
            for stage, dim in zip(self.stages, self.embed_dims):
                stage.norm = make_norm(dim)
        if 'last' in self.norms_at:
            self.out_norm = make_norm(self.embed_dims[-1])
        if 'outputs' in self.norms_at:
            self.output_norms = nn.ModuleDict(
                {str(i): make_norm(self.embed_dims[i]) for i in self.out_indices})

    def norm_prefixes(self, place: str) -> Tuple[str, ...]:
        """The checkpoint keys (prefixes) of the norms at ``place``."""
        if place == 'stages':
            return tuple(f'stages.{i}.norm.' for i in range(self.num_stages))
        return (NORM_PLACES[place], )

    @property
    def optional_state_prefixes(self) -> Tuple[str, ...]:
        """Keys a checkpoint may have that this backbone lacks: the norms of the family's places
        it was built without (a classifier's final norm in a dense backbone, the stage norms the
        official STM detection backbone drops)."""
        return tuple(prefix for place in self.norm_places if place not in self.norms_at
                     for prefix in self.norm_prefixes(place))

    @property
    def new_state_prefixes(self) -> Tuple[str, ...]:
        """Keys this backbone has that pretrained checkpoints lack: the norms of returned maps,
        which start fresh."""
        return self.norm_prefixes('outputs') if 'outputs' in self.norms_at else ()

    # ------------------------------------------------------------------ freezing and modes
    def frozen_groups(self) -> Sequence:
        """The stem, then the stages."""
        return [self.get_submodule(self.stem_name), *self.stages]

    def finish_build(self):
        """Called last by every family's ``__init__``: 4-D weights in channels_last memory format,
        then the frozen stages frozen. Token maps viewed as images are channels_last; PyTorch's CPU
        convolutions run on them without layout copies only when the weights are too (measured
        1.05-1.8x faster backbones). Loading, ``.to`` and optimizers keep the layout."""
        self.to(memory_format=torch.channels_last)
        for stage in self.stages:
            stage.with_cp = self.with_cp
        self._freeze_stages()

    def fuse(self):
        """Fuse for inference, in place: batch norms folded into the convolutions before them
        (:func:`~groupmix_backbones.models.layers.fuse_modules`). The backbone stays in eval
        mode: training it afterwards is an error. Returns self."""
        return fuse_modules(self)

    def fuse_own(self):
        """Mark the backbone fused (its layers fold themselves)."""
        self.fused = True

    def _freeze_stages(self):
        groups = list(self.frozen_groups())
        # the stem and stages 1..k, and the stages past the last returned one (never run: frozen,
        # or distributed training would wait for their gradients)
        groups = groups[:self.frozen_stages + 1] + groups[max(self.out_indices) + 2:]
        stages = [*range(self.frozen_stages), *range(max(self.out_indices) + 1, self.num_stages)]
        groups += [norm for norm in map(self.output_norm, stages) if norm is not None]
        for module in groups:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        if mode and self.fused:
            raise RuntimeError(f'{type(self).__name__} was fused for inference (fuse()): its batch '
                               f'norms are folded away. Train a model built unfused.')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    # ------------------------------------------------------------------ init and loading
    def init_weights(self):
        """The family's initialisation (:meth:`init_module` on every module), then mmengine's for
        the other ``init_cfg`` entries, then each ``Pretrained`` entry's checkpoint, recognised,
        converted when official and loaded strictly (:func:`~.loading.load_pretrained`)."""
        if self._is_init:
            return
        self.apply(self.init_module)
        init_cfg = self.init_cfg
        cfgs = list(init_cfg) if isinstance(init_cfg, (list, tuple)) else \
            [init_cfg] if init_cfg else []
        pretrained = [cfg for cfg in cfgs if cfg.get('type') in ('Pretrained', PretrainedInit)]
        self.init_cfg = [cfg for cfg in cfgs if not any(cfg is p for p in pretrained)] or None
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        for cfg in pretrained:
            load_pretrained(self, cfg)

    def init_module(self, module: nn.Module):
        """Default initialisation: truncated normal for linear layers, unit LayerNorm."""
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def saved_arch(self, state_dict, prefix: str) -> Optional[str]:
        """The arch (``"Name(arch='tiny')"``) of this class a state dict of another arch holds, for
        error messages; None when the family cannot tell."""
        return None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        self.migrate_keys(state_dict, prefix, local_metadata.get('version'))
        adapt_saved_grids(self, state_dict, prefix)
        check_backbone_state(self, state_dict, prefix, optional=self.optional_state_prefixes,
                             new=self.new_state_prefixes)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def migrate_keys(self, state_dict, prefix: str, version: Optional[int]):
        """Rename, in place, the keys under ``prefix`` of a state dict of key ``version`` to the
        current ones (:attr:`key_renames`). A state dict without a version (no metadata: converted
        official weights, timm's loads, mmengine's loads by prefix) is read as of the first
        version; the renames leave current keys as they are."""
        renames = [rule for v in range((version or 1) + 1, self._version + 1)
                   for rule in self.key_renames.get(v, ())]
        if not renames:
            return
        for key in [key for key in state_dict if key.startswith(prefix)]:
            new = key[len(prefix):]
            for pattern, replacement in renames:
                new = re.sub(pattern, replacement, new)
            if prefix + new != key:
                state_dict[prefix + new] = state_dict.pop(key)
