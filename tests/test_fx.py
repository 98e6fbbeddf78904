"""timm's FX path: every backbone class traces symbolically with the leaves this package registers in
timm (as timm's own ``tests/test_models.py`` FX tests trace a model: torchvision's feature
extraction with timm's leaf modules and functions), and the graph computes the eager model exactly,
in inference and in training (every parameter gets a gradient); the
input check still names a wrong input's shape for eager callers."""
import pytest
import timm
import torch
from test_contract import one_block_arch
from test_timm import CLASSES, SMALLEST
from timm.layers import create_feature_extractor, get_graph_node_names
from timm.models import get_notrace_modules

from groupmix_backbones.models import Stage


def small_model(cls_name, **kwargs):
    torch.manual_seed(0)
    name = SMALLEST[cls_name]
    arch = one_block_arch(CLASSES[cls_name], timm_arch(name))
    return timm.create_model(name, arch=arch, **kwargs)


def timm_arch(name):
    from groupmix_backbones.timm_models import TIMM_MODELS
    return TIMM_MODELS[name].arch


@pytest.mark.parametrize('cls_name', list(SMALLEST))
def test_fx_graph_computes_the_eager_model(cls_name):
    model = small_model(cls_name, num_classes=7).eval()
    _, nodes = get_graph_node_names(model)
    assert nodes[-1].startswith('head'), nodes  # traced to the end, the classifier's nodes
    graph = create_feature_extractor(model, [nodes[-1]])
    x = torch.randn(2, 3, 61, 75)
    with torch.no_grad():
        torch.testing.assert_close(graph(x)[nodes[-1]], model(x), rtol=0, atol=0)
    # training: every parameter of the model is in the graph and gets a gradient
    graph = create_feature_extractor(model.train(), [nodes[-1]])
    graph(x)[nodes[-1]].mean().backward()
    params = dict(graph.named_parameters())
    assert sum(p.numel() for p in params.values()) == sum(p.numel() for p in model.parameters())
    assert all(p.grad is not None for p in params.values()), \
        [name for name, p in params.items() if p.grad is None]


def test_stages_are_leaves_and_the_input_check_stays_for_eager_callers():
    assert all(issubclass(cls, tuple(get_notrace_modules())) for cls in Stage.__subclasses__()
               if cls.__name__ != 'GroupMixStage')  # (traced: its blocks are the leaves)
    model = small_model('FLattenSwin').eval()
    with pytest.raises(ValueError, match=r'expects images \(batch >= 1, 3, H, W\), got '
                                         r'\(2, 4, 32, 32\)'):
        model(torch.randn(2, 4, 32, 32))
