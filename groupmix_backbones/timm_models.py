"""Every backbone as a timm model, registered in timm's model registry on ``import
groupmix_backbones`` under the official code's names (``sgformer_s``, ``flatten_pvt_v2_b0``,
``unified_dcn_v3_micro``) or, where it has none, ``<family>_<arch>`` (``groupmixformer_small``).

One class, :class:`TimmClassifier`, holds our backbone, the family's neck where its classifier has
one (the unified family's 1x1 conv) and timm's ``ClassifierHead``, under the names of our converted
classifier checkpoints (``backbone.*``, ``neck.*``, ``head.fc.*``): an official checkpoint goes
through the family's rule table (:mod:`.converters`) and loads strictly. Every checkpoint file or
URL is read by our safe loader (:func:`.safe_checkpoint.safe_torch_load`), never timm's.
A name timm already has keeps timm's model: ours is then skipped with a warning.
"""
import logging
import warnings
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (ClassifierHead, register_notrace_function, register_notrace_module,
                         trunc_normal_)
from timm.models import (adapt_input_conv, build_model_with_cfg, generate_default_cfgs, is_model,
                         model_entrypoint, register_model)

from . import zoo
from .converters import ConversionError, describe_keys, official_state_dict, recognise
from .models import CheckpointMismatchError, PointwiseConvPoolNeck, Stage
from .models.layers import Linear, pad_for_strided_conv
from .safe_checkpoint import safe_torch_load
from .registry import BACKBONES


class NameClashError(ValueError):
    """A name to register that timm already gives to another model."""


def _init_quietly(module: nn.Module):
    """mmengine's ``init_weights`` (the family's own initialisation) without its log line per
    parameter; nothing on the meta device (built for its structure: no values to set)."""
    if any(param.is_meta for param in module.parameters()):
        return
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)


class TimmClassifier(nn.Module):
    """One of our backbones as a timm classifier: the backbone's last map, the family's neck
    (``neck_expand_ratio``: :class:`~.models.PointwiseConvPoolNeck`'s widening conv, BN and GELU),
    pooling, dropout and a linear classifier, with timm's (>= 1.0) model API.

    Args:
        backbone_type (str): Our backbone class, e.g. ``'SGFormer'``.
        arch (str): Its arch name.
        num_classes (int): Classes of the classifier; 0 leaves it out. Defaults to 1000.
        global_pool (str): timm's pooling type; ``''`` for none. Defaults to ``'avg'``.
        in_chans (int): Input channels. Defaults to 3.
        drop_rate (float): Dropout before the classifier. Defaults to 0.
        neck_expand_ratio (float, optional): The unified family's neck; None: no neck.
        **backbone_args: The backbone's own options (``drop_path_rate``, ``final_norm``, ...).
    """

    def __init__(self, *, backbone_type: str, arch: str, num_classes: int = 1000,
                 global_pool: str = 'avg', in_chans: int = 3, drop_rate: float = 0.,
                 neck_expand_ratio: Optional[float] = None, device=None, dtype=None,
                 **backbone_args):
        super().__init__()
        backbone_cls = {cls.__name__: cls for cls in BACKBONES}[backbone_type]
        self.backbone = backbone_cls(arch=arch, in_channels=in_chans, **backbone_args)
        _init_quietly(self.backbone)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.drop_rate = drop_rate
        self.num_features = self.backbone.embed_dims[-1]
        self.feature_info = [dict(info, module=f'backbone.{info["module"]}')
                             for info in self.backbone.feature_info]
        self.neck = None
        if neck_expand_ratio is not None:
            self.neck = PointwiseConvPoolNeck(self.num_features, expand_ratio=neck_expand_ratio)
            _init_quietly(self.neck)
        self.head = ClassifierHead(self.neck.out_channels if self.neck else self.num_features,
                                   num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self._init_classifier()
        self.head_hidden_size = self.head.num_features
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    def _init_classifier(self):
        if isinstance(self.head.fc, nn.Linear):
            trunc_normal_(self.head.fc.weight, std=.02)
            nn.init.zeros_(self.head.fc.bias)

    # ------------------------------------------------------------------ timm's model API
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None):
        """A new classifier of ``num_classes`` (0: none) and, unless None, pooling."""
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)
        self._init_classifier()
        self.head_hidden_size = self.head.num_features
        if global_pool is not None:
            self.global_pool = global_pool

    def set_grad_checkpointing(self, enable: bool = True):
        """Activation checkpointing of every block while training (the backbone's ``with_cp``)."""
        self.backbone.with_cp = enable
        for stage in self.backbone.stages:
            stage.with_cp = enable

    def no_weight_decay(self) -> set:
        return {f'backbone.{name}' for name in self.backbone.no_weight_decay()}

    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups by stage for layer-wise learning-rate decay."""
        stage = r'^backbone\.stages\.(\d+)'
        return dict(stem=rf'^backbone\.{self.backbone.stem_name}\.',
                    blocks=stage if coarse else [(rf'{stage}\.blocks\.(\d+)', None),
                                                 (stage, (0, )),
                                                 (r'^backbone\.out_norm', (99999, ))])

    def forward_intermediates(self, x: torch.Tensor, indices=None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """The backbone's :meth:`~.models.DenseBackbone.forward_intermediates` (timm's contract):
        the maps of the stages in ``indices``, the last one through the classifier's norm where
        the family has one; with only intermediates asked for, no later stage runs."""
        return self.backbone.forward_intermediates(
            x, indices, norm=norm, stop_early=stop_early or intermediates_only,
            output_fmt=output_fmt, intermediates_only=intermediates_only)

    def prune_intermediate_layers(self, indices=1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Keep what the maps of ``indices`` need: the classifier (and neck) go with
        ``prune_head``, the classifier's final norm with ``prune_norm`` or when the last stage is
        not kept, and stages past the last kept one are frozen and never run (as the backbone's
        ``out_indices`` does). Returns the kept indices."""
        take = self.backbone.take_indices(indices)
        prune_end = max(take) < self.backbone.num_stages - 1
        if (prune_norm or prune_end) and self.backbone.out_norm is not None:
            self.backbone.out_norm = None
        self.backbone.out_indices = tuple(take)
        self.backbone.train(self.backbone.training)  # freezes the stages no longer run
        if prune_end:
            self.num_features = self.feature_info[max(take)]['num_chs']
        if prune_head or prune_end:
            self.neck = None
            self.head = ClassifierHead(self.num_features, 0, pool_type='')
            self.num_classes, self.global_pool = 0, ''
            self.head_hidden_size = self.num_features
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's map (B, C, H, W), through the classifier's norm where there is one."""
        return self.backbone.forward_intermediates(x, 1, intermediates_only=True)[-1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.neck is not None:
            x = self.neck.project(x)
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # ------------------------------------------------------------------ official checkpoints
    def convert_state_dict(self, checkpoint: dict) -> Dict[str, torch.Tensor]:
        """Our state dict from an official checkpoint of this model's family (through its rule
        table) or from one of ours (``backbone.*`` keys, as the converters write); the first conv
        adapted to ``in_chans`` (timm's ``adapt_input_conv``)."""
        ours = type(self.backbone).__name__
        found = recognise(checkpoint)
        if found is not None:
            fmt, backbone = found
            if backbone != ours:
                names = ', '.join(name for name, model in TIMM_MODELS.items()
                                  if model.backbone == backbone)
                raise ConversionError(f'This is an official {backbone} checkpoint ({fmt.repo}); '
                                      f'this model is a {ours}. Create one of {names}.')
            state, _ = fmt.convert(checkpoint)
        else:
            state = dict(official_state_dict(checkpoint))
            if not any(key.startswith('backbone.') for key in state):
                raise ConversionError(
                    f'Not a checkpoint of {ours}: expected an official one or ours (backbone.* '
                    f'keys); found {describe_keys(state)}.')
        first_conv = f'{self.first_conv}.weight'
        if self.in_chans != 3 and first_conv in state:
            state[first_conv] = adapt_input_conv(self.in_chans, state[first_conv])
        return state

    @property
    def first_conv(self) -> str:
        """The module name of the convolution that reads the image: the stem's first."""
        stem = self.backbone.stem_name
        return next(f'backbone.{stem}.{name}' for name, module in
                    self.backbone.get_submodule(stem).named_modules()
                    if isinstance(module, nn.Conv2d))

    def load_pretrained(self, path: str):
        """timm's custom load (``pretrained=True``, a ``file`` or downloaded ``url``): the
        checkpoint read by our safe loader, converted, and loaded strictly; a classifier of
        another number of classes (or none) is left as built."""
        state = self.convert_state_dict(safe_torch_load(path, map_location='cpu'))
        fc = self.head.fc
        saved = state.get('head.fc.weight')
        keep_head = (isinstance(fc, nn.Linear) and saved is not None
                     and saved.shape == fc.weight.shape)
        if not keep_head:
            state = {key: value for key, value in state.items() if not key.startswith('head.fc.')}
        result = self.load_state_dict(state, strict=keep_head)
        missing = [key for key in result.missing_keys if not key.startswith('head.fc.')]
        if missing or result.unexpected_keys:
            raise CheckpointMismatchError(
                f'Checkpoint {path!r} does not fit {self.pretrained_cfg["architecture"]}: missing '
                f'{missing}, unexpected {result.unexpected_keys}.')


def _convert_filter(state_dict, model):
    """timm's ``pretrained_filter_fn`` (in-memory ``state_dict`` sources)."""
    return model.convert_state_dict(state_dict)


@dataclass(frozen=True)
class TimmModel:
    """A registered name: our backbone type and arch, its classifier's options and the pretrained
    cfg (timm's ``PretrainedCfg`` fields)."""
    backbone: str
    arch: str
    cfg: dict
    backbone_args: dict = field(default_factory=dict)
    neck_expand_ratio: Optional[float] = None


def _family(backbone: str, *, paper_ids: str, repo: str, **options):
    """A maker of :class:`TimmModel` entries of one family: ImageNet mean and std, bicubic; the
    weights are the catalogue's (:func:`_with_weights`). The first conv (for ``in_chans``) is the
    model's own (:attr:`TimmClassifier.first_conv`)."""

    def entry(arch: str, *, size: int = 224, crop_pct: float = 0.875) -> TimmModel:
        cfg = dict(custom_load=True, num_classes=1000, input_size=(3, size, size),
                   pool_size=(size // 32, ) * 2, crop_pct=crop_pct, interpolation='bicubic',
                   mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, classifier='head.fc',
                   origin_url=f'https://github.com/{repo}', paper_ids=paper_ids)
        return TimmModel(backbone, arch, cfg, **options)

    return entry


def _with_weights(name: str, model: TimmModel) -> TimmModel:
    """``model`` with the official weights of :mod:`.zoo`: a file timm downloads (cached as
    ``<name>.pth`` where its URL names no file) or a download page, said in the notes."""
    url, page = zoo.official_weights(model.backbone, model.arch)
    if url and not url.split('?')[0].endswith('.pth'):
        url = (url, f'{name}.pth')
    cfg = dict(model.cfg, url=url)
    if page:
        cfg.update(origin_url=page, notes=(
            f'The official weights are on a download page ({page}), not a file: download one and '
            'pass pretrained_cfg_overlay=dict(file=PATH).', ))
    return replace(model, cfg=cfg)


# Test transforms from the official data pipelines: GroupMixFormer and FLatten (Swin's
# data/build.py: resize 256/224, centre crop, bicubic; FLatten-Swin-B-384 TEST.CROP False),
# SG-Former (timm 0.3.4's vision_transformer._cfg: crop 0.9), STM-Evaluation (main.py --crop_pct
# 0.875). All use ImageNet's mean and std.
_groupmixformer = _family('GroupMixFormer', paper_ids='arXiv:2311.15157',
                          repo='AILab-CVC/GroupMixFormer', backbone_args=dict(final_norm=True))
_flatten_pvt = _family('FLattenPVT', paper_ids='arXiv:2308.00442',
                       repo='LeapLabTHU/FLatten-Transformer')
_flatten_pvt_v2 = _family('FLattenPVTv2', paper_ids='arXiv:2308.00442',
                          repo='LeapLabTHU/FLatten-Transformer')
_flatten_swin = _family('FLattenSwin', paper_ids='arXiv:2308.00442',
                        repo='LeapLabTHU/FLatten-Transformer', backbone_args=dict(final_norm=True))
_flatten_cswin = _family('FLattenCSWin', paper_ids='arXiv:2308.00442',
                         repo='LeapLabTHU/FLatten-Transformer',
                         backbone_args=dict(final_norm=True))
_sgformer = _family('SGFormer', paper_ids='arXiv:2308.12216', repo='OliverRensu/SG-Former')

TIMM_MODELS: Dict[str, TimmModel] = {
    **{f'groupmixformer_{arch}': _groupmixformer(arch)
       for arch in ('mini', 'tiny', 'small', 'base', 'large')},
    **{f'flatten_pvt_{arch}': _flatten_pvt(arch) for arch in ('tiny', 'small', 'medium', 'large')},
    **{f'flatten_pvt_v2_{arch}': _flatten_pvt_v2(arch)
       for arch in ('b0', 'b1', 'b2', 'b3', 'b4', 'b5')},
    **{f'flatten_swin_{arch}': _flatten_swin(arch) for arch in ('tiny', 'small', 'base')},
    'flatten_swin_base_384': _flatten_swin('base_384', size=384, crop_pct=1.0),
    **{f'flatten_cswin_{arch}': _flatten_cswin(arch) for arch in ('tiny', 'small', 'base')},
    'flatten_cswin_base_384': _flatten_cswin('base_384', size=384),
    **{f'sgformer_{arch}': _sgformer(arch, crop_pct=0.9) for arch in ('s', 'm', 'b')},
}
# the unified family: official name, our class (the seeds' attentions as unified mixers are new
# models without released weights; docs/mixers.md)
for _mixer, _backbone in (('halo', 'UnifiedHaloNet'), ('pvt', 'UnifiedPVT'),
                          ('swin', 'UnifiedSwin'), ('convnext', 'UnifiedConvNeXt'),
                          ('dcn_v3', 'UnifiedInternImage'), ('groupmix', 'UnifiedGroupMix'),
                          ('flatten', 'UnifiedFLatten')):
    _unified = _family(_backbone, paper_ids='arXiv:2211.05781', repo='OpenGVLab/STM-Evaluation',
                       neck_expand_ratio=1.5)
    for _size in ('micro', 'tiny', 'small', 'base'):
        TIMM_MODELS[f'unified_{_mixer}_{_size}'] = _unified(_size)
TIMM_MODELS = {name: _with_weights(name, model) for name, model in TIMM_MODELS.items()}

default_cfgs = generate_default_cfgs({name: model.cfg for name, model in TIMM_MODELS.items()})


def create_model(name: str, pretrained: bool = False, pretrained_cfg=None,
                 pretrained_cfg_overlay: Optional[dict] = None, **kwargs) -> nn.Module:
    """Our model ``name`` (a key of :data:`TIMM_MODELS`) through timm's builder, as
    ``timm.create_model(name, ...)`` builds it; also when timm gives the name to another model.
    ``kwargs`` are :class:`TimmClassifier`'s and override the registered ones (``arch=dict(...)``
    builds a custom size).
    A checkpoint ``file`` or ``url`` always loads through :meth:`TimmClassifier.load_pretrained`
    (the safe loader); an in-memory ``state_dict`` through the same conversion."""
    if name not in TIMM_MODELS:
        raise KeyError(f'No groupmix_backbones timm model {name!r}; valid: '
                       f'{", ".join(TIMM_MODELS)}.')
    model = TIMM_MODELS[name]
    base_cfg = dict(pretrained_cfg if isinstance(pretrained_cfg, dict) else model.cfg)
    overlay = dict(pretrained_cfg_overlay or {})
    if overlay.get('file') or overlay.get('url'):
        overlay['custom_load'] = True  # timm would read a new source with its own loader
    if pretrained:
        cfg = {**base_cfg, **overlay}
        if not any(cfg.get(key) for key in ('url', 'file', 'state_dict', 'hf_hub_id')):
            raise RuntimeError(
                f'{name}: no official checkpoint timm can download (see {cfg.get("origin_url")}). '
                'Download it and pass pretrained_cfg_overlay=dict(file=PATH).')
    return build_model_with_cfg(
        TimmClassifier, name, pretrained, pretrained_cfg=base_cfg, pretrained_cfg_overlay=overlay,
        pretrained_filter_fn=_convert_filter,
        feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
        **{**model.backbone_args, 'backbone_type': model.backbone, 'arch': model.arch,
           'neck_expand_ratio': model.neck_expand_ratio, **kwargs})


def _entrypoint(name: str):
    def entrypoint(pretrained: bool = False, **kwargs):
        return create_model(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = (f'{TIMM_MODELS[name].backbone} (arch={TIMM_MODELS[name].arch!r}) as a '
                          'timm classifier (groupmix_backbones).')
    return entrypoint


def register_timm_model(name: str):
    """Register ``name`` (a key of :data:`TIMM_MODELS`) in timm's registry with its pretrained cfg.

    Raises:
        NameClashError: timm has a model of that name that is not ours; it stays registered.
    """
    if is_model(name):
        owner = model_entrypoint(name).__module__
        if owner == __name__:
            return
        raise NameClashError(
            f'timm already has a model named {name!r} ({owner}); groupmix_backbones does not '
            f'replace it. Build ours with groupmix_backbones.timm_models.create_model({name!r}).')
    register_model(_entrypoint(name))


def register_timm_models(names=None):
    """Register every name of :data:`TIMM_MODELS` (or ``names``); a name timm already gives to
    another model is skipped with a warning that says so."""
    for name in names or TIMM_MODELS:
        try:
            register_timm_model(name)
        except NameClashError as clash:
            warnings.warn(str(clash), stacklevel=2)


register_timm_models()


def register_fx_leaves():
    """Register in timm what its FX tracing (its ``create_feature_extractor`` and FX tests,
    ``features_only=True, feature_cls='fx'``) calls as one node, run eagerly: every stage (their
    blocks compute pads, windows and masks from the map's size, on which a symbolic trace cannot
    branch), our :class:`~.models.layers.Linear` (its
    kernel depends on the row count) and the stems' ``pad_for_strided_conv``
    (``resize_pos_embed`` is wrapped where it is defined). The graph computes exactly what the eager
    model computes. ``feature_cls='fx'`` returns each stage's own output (NHWC tokens for the
    token families, before output norms); the default ``features_only`` (timm's getter, through
    ``forward_intermediates``) returns the backbone's NCHW maps."""
    stages = Stage.__subclasses__()  # (a leaf class makes its subclasses leaves too)
    while stages:
        cls = stages.pop()
        register_notrace_module(cls)
        stages += cls.__subclasses__()
    register_notrace_module(Linear)
    register_notrace_function(pad_for_strided_conv)


register_fx_leaves()
