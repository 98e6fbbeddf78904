"""Our classifiers against the official implementations (GroupMixFormer, FLatten, SG-Former,
STM-Evaluation's unified models), from a clone the user points at (never vendored): the official model is built with random weights, converted by our converter, loaded
strictly into the classifier of our config, and both are run on the same input."""
import contextlib
import importlib.util
import os
import os.path as osp
import sys
import types
from typing import Callable, Dict, NamedTuple, Optional

import torch
from mmengine.config import Config

from ..converters import FORMATS
from .model import build_model


class OfficialModel(NamedTuple):
    module: str  # file in the official repository, e.g. 'models/flatten_swin.py'
    build: Callable  # (module, arch name, our arch settings, image size) -> classifier
    stubs: tuple = ()  # debugging-only imports of the official module that may be missing
    setup: Optional[Callable[[], None]] = None  # what the official code needs before import
    dtype: torch.dtype = torch.float32  # of both models and the input


def _restore_numpy_float():
    """SG-Former's pos_embed.py uses ``np.float``, removed in numpy 1.24 (it was ``float``)."""
    import numpy as np
    if not hasattr(np, 'float'):
        np.float = float


def _flatten_kwargs(settings):
    return dict(focusing_factor=3, kernel_size=5, attn_type=settings['attn_types'])


def _cswin_factory(arch):
    return {'tiny': 'FLatten_CSWin_64_24181_tiny_224', 'small': 'FLatten_CSWin_64_24322_small_224',
            'base': 'FLatten_CSWin_96_36292_base_224',
            'base_384': 'FLatten_CSWin_96_36292_base_384'}[arch]


def _timm_halo_attn_path():
    """STM-Evaluation's code was written for timm 0.6.7 and a CUDA extension; beside timm 1.x it
    imports with timm's former path of ``halo_attn``."""
    import timm.layers.halo_attn
    sys.modules.setdefault('timm.models.layers.halo_attn', timm.layers.halo_attn)


@contextlib.contextmanager
def _timm_registry_kept():
    """The official files register their models in timm under the names of ours
    (``groupmix_backbones.timm_models``: ``sgformer_s``, ``flatten_pvt_v2_b0``, ...): while one
    is imported, timm's ``register_model`` leaves the registry as it is."""
    import timm.models
    from timm.models import _registry, registry  # the official files import from either path
    modules = (timm.models, _registry, registry)
    registers = [module.register_model for module in modules]
    for module in modules:
        module.register_model = lambda fn: fn
    try:
        yield
    finally:
        for module, register in zip(modules, registers):
            module.register_model = register


class _DeformAttnOnCPU:
    """Stands in for STM-Evaluation's ``MSDeformAttnFunction`` (its CUDA-only extension) with
    mmcv's PyTorch reference of the same op, differentiated by autograd."""

    @staticmethod
    def apply(value, shapes, level_start, locations, weights, im2col_step):
        from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
        return multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)


def _stm(mixer: str, factory: str):
    """STM-Evaluation's ``unified_{mixer}_{arch}`` classifier (``model_factory/{factory}.py``):
    timm 1.x's window partition takes (height, width) where timm 0.6.7's took one int (its
    ``WindowAttention`` keeps 0.6.7's explicit softmax by default), and DCNv3 runs on CPU."""
    def build(module, arch, settings, size):
        from timm.models import swin_transformer as timm_swin
        from timm.layers import to_2tuple
        swin = module.blocks.swin
        swin.window_partition = lambda x, w: timm_swin.window_partition(x, to_2tuple(w))
        swin.window_reverse = lambda x, w, h, wd: timm_swin.window_reverse(x, to_2tuple(w), h, wd)
        module.blocks.dcn_v3.MSDeformAttnFunction = _DeformAttnOnCPU
        return getattr(getattr(module.model_factory, factory), f'unified_{mixer}_{arch}')()
    return OfficialModel('classification/models/__init__.py', build,
                         stubs=('MultiScaleDeformableAttention', ), setup=_timm_halo_attn_path)


OFFICIAL: Dict[str, OfficialModel] = {
    'GroupMixFormer': OfficialModel(
        'models/groupmixformer.py', lambda m, arch, s, size: m.GroupMixFormer(
            embedding_dims=s['embed_dims'], serial_depths=s['depths'], mlp_ratios=s['mlp_ratios'],
            drop_path_rate=0.), stubs=('ipdb', )),
    'FLattenPVT': OfficialModel(
        'models/flatten_pvt.py', lambda m, arch, s, size: getattr(m, f'flatten_pvt_{arch}')(
            la_sr_ratios='1111', **_flatten_kwargs(s))),
    'FLattenPVTv2': OfficialModel(
        'models/flatten_pvt_v2.py', lambda m, arch, s, size: getattr(m, f'flatten_pvt_v2_{arch}')(
            la_sr_ratios='1111', **_flatten_kwargs(s))),
    'FLattenSwin': OfficialModel(
        'models/flatten_swin.py', lambda m, arch, s, size: m.FLattenSwinTransformer(
            img_size=size, embed_dim=s['embed_dims'][0], depths=s['depths'],
            num_heads=s['num_heads'], window_size=size // 4, **_flatten_kwargs(s))),
    'FLattenCSWin': OfficialModel(
        'models/flatten_cswin.py', lambda m, arch, s, size: getattr(m, _cswin_factory(arch))(
            img_size=size, la_split_size='-'.join(str(size // 2 ** i) for i in range(2, 6)),
            **_flatten_kwargs(s))),
    # float64: SG-Former sorts tokens by a significance map whose values are nearly equal with
    # random weights (near-uniform attention); in float32 rounding reorders near-equal ones
    # (the official model's own logits for a batch of 2 and one by one differ by up to 4e-3)
    'SGFormer': OfficialModel(
        'sgformer.py', lambda m, arch, s, size: getattr(m, f'sgformer_{arch}')(),
        setup=_restore_numpy_float, dtype=torch.float64),
    'UnifiedHaloNet': _stm('halo', 'halonet_factory'),
    'UnifiedPVT': _stm('pvt', 'pvt_factory'),
    'UnifiedSwin': _stm('swin', 'swin_factory'),
    'UnifiedConvNeXt': _stm('convnext', 'convnext_factory'),
    'UnifiedInternImage': _stm('dcn_v3', 'dcnv3_factory'),
}


def import_official(repo: str, module: str, stubs=(), setup=None):
    """Import the file ``module`` of the official clone ``repo`` as a module of its own (its
    folder first on ``sys.path`` meanwhile, for its imports of sibling files, which are not kept
    in ``sys.modules``: another clone's files of the same names are imported afresh); a package's
    ``__init__.py`` is imported as a package, for its relative imports."""
    path = osp.join(repo, module)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: --official-repo must be a clone of the '
                                f'official repository (it has {module}).')
    for name in stubs:
        sys.modules.setdefault(name, types.ModuleType(name))
    if setup is not None:
        setup()
    folder = osp.dirname(osp.abspath(path))
    package = osp.basename(path) == '__init__.py'
    name = 'official_' + osp.basename(folder if package else osp.splitext(path)[0])
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[folder] if package else None)
    loaded = sys.modules[name] = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    before = set(sys.modules)
    try:
        with _timm_registry_kept():
            spec.loader.exec_module(loaded)
    finally:
        sys.path.remove(folder)
        for sibling in set(sys.modules) - before:
            if (getattr(sys.modules[sibling], '__file__', None) or '').startswith(folder + os.sep):
                del sys.modules[sibling]
    return loaded


@torch.no_grad()
def randomise(model: torch.nn.Module, seed: int = 0):
    """Random weights everywhere (also the zero-initialised tables) and norm statistics."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.add_(0.02 * torch.randn(param.shape, generator=generator))
    for name, buffer in model.named_buffers():
        if name.endswith('running_mean'):
            buffer.copy_(0.1 * torch.randn(buffer.shape, generator=generator))
        elif name.endswith('running_var'):
            buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator))


def official_spec(cfg: Config) -> OfficialModel:
    """The official model entry of an mmpretrain classifier config of a named arch."""
    backbone = cfg.model.backbone
    if cfg.get('default_scope') != 'mmpretrain' or backbone.type not in OFFICIAL:
        raise ValueError(f'{cfg.filename}: an mmpretrain classifier config of one of '
                         f'{sorted(OFFICIAL)} is needed, got {backbone.type} '
                         f'({cfg.get("default_scope")}).')
    if not isinstance(backbone.get('arch'), str):
        raise ValueError(f'{cfg.filename}: the official model is built from a named arch, got '
                         f'{backbone.get("arch")!r}.')
    return OFFICIAL[backbone.type]


def build_official(cfg: Config, settings: dict, official_repo: str, size: int):
    """The official classifier of ``cfg``'s arch (``settings``: our backbone's), for ``size``
    inputs where the official constructor takes a size, imported from ``official_repo``."""
    spec = official_spec(cfg)
    module = import_official(official_repo, spec.module, spec.stubs, spec.setup)
    return spec.build(module, cfg.model.backbone.arch, settings, size)


def compare(config: str, official_repo: str, seed: int = 0, batch_size: int = 2):
    """Largest absolute difference between the official model's logits and those of our
    classifier from ``config`` loaded with its converted weights; also returns the input size."""
    cfg = Config.fromfile(config)
    spec = official_spec(cfg)
    ours, _ = build_model(cfg)
    backbone = cfg.model.backbone
    settings = ours.backbone.arch_settings
    size = settings.get('pretrain_img_size', 224)
    official = build_official(cfg, settings, official_repo, size).eval()
    randomise(official, seed)
    fmt = next(f for f in FORMATS if backbone.type in f.rules)
    state, detected = fmt.convert(official.state_dict())
    if detected != backbone.type:
        raise ValueError(f'The official checkpoint was recognised as {detected}, the config builds '
                         f'{backbone.type}.')
    ours.load_state_dict(state, strict=True)
    official.to(spec.dtype)
    ours.to(spec.dtype)
    inputs = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(seed),
                         dtype=spec.dtype)
    with torch.no_grad():
        diff = (ours(inputs, mode='tensor') - official(inputs)).abs().max().item()
    return diff, size
