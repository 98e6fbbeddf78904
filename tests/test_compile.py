"""Every registered backbone compiles with ``torch.compile`` as one graph: no graph breaks in
inference or training, and the compiled forward computes the eager one. ``aot_eager`` traces
through dynamo and AOTAutograd as inductor would, without generating C++ (fast on CPU)."""
import pytest
import torch

from groupmix_backbones.registry import BACKBONES
from test_contract import build

CLASSES = [(cls, next(iter(cls.arch_zoo))) for cls in BACKBONES]
IDS = [cls.__name__ for cls, _ in CLASSES]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_compiles_as_one_graph_and_computes_the_eager_forward(cls, name):
    model = build(cls, name).eval()
    x = torch.randn(1, 3, 45, 61)
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)  # a break is an error
    with torch.no_grad():
        for got, want in zip(compiled(x), model(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_training_forward_has_no_graph_break(cls, name):
    model = build(cls, name, drop_path_rate=0.1).train()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 33, 47))
    assert explanation.graph_break_count == 0, [str(r.reason)[:300]
                                                for r in explanation.break_reasons]
