"""Inference-time fusion (``backbone.fuse()``, ``fuse_modules(model)``): batch norms folded into
the convolutions before them give the unfused outputs, for every registered backbone and the
classifier neck; fusing twice changes nothing; a fused backbone refuses to train."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from groupmix_backbones import GroupMixFormer, fuse_modules
from groupmix_backbones.analysis.official import randomise
from groupmix_backbones.registry import BACKBONES
from test_contract import build

CLASSES = [(cls, next(iter(cls.arch_zoo))) for cls in BACKBONES]
IDS = [cls.__name__ for cls, _ in CLASSES]


def assert_same_outputs(fused, model, x):
    with torch.no_grad():
        for got, want in zip(fused(x), model(x)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_fused_backbone_computes_the_unfused_one(cls, name):
    model = build(cls, name).eval()
    randomise(model)  # batch norm statistics and affine parameters far from identity
    fused = copy.deepcopy(model).fuse()
    assert fused.fused and not fused.training
    assert_same_outputs(fused, model, torch.randn(2, 3, 45, 61))
    assert_same_outputs(fused.fuse(), model, torch.randn(1, 3, 33, 47))  # twice: harmless
    with pytest.raises(RuntimeError, match='fused for inference'):
        fused.train()


def test_groupmixformer_keeps_only_norms_without_a_conv_before_them():
    model = GroupMixFormer(arch=dict(embed_dims=[40, 80, 160, 160], depths=[1, 1, 1, 1],
                                     mlp_ratios=[4, 4, 4, 4]), final_norm=True).fuse()
    left = [name for name, module in model.named_modules() if isinstance(module, _BatchNorm)]
    # the identity group's aggregator (kernel 1) and the output norm have no conv to fold into
    assert left and all(name.endswith('group_aggs.0.norm') or name == 'out_norm' for name in left)


def test_fuse_modules_fuses_a_classifier_with_its_neck():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='UnifiedConvNeXt', arch=dict(embed_dims=[8, 16, 32, 64],
                                                            depths=[1, 1, 1, 1]),
                          out_indices=(3, )),
            neck=dict(type='PointwiseConvPoolNeck', in_channels=64),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=96)))
    randomise(model)
    fused = fuse_modules(copy.deepcopy(model))
    assert not any(isinstance(module, _BatchNorm) for module in fused.modules())
    assert fused.backbone.fused
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        torch.testing.assert_close(fused(x, mode='tensor'), model.eval()(x, mode='tensor'),
                                   rtol=1e-4, atol=1e-5)
