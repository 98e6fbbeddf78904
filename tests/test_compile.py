"""Every registered backbone compiles with ``torch.compile`` as one graph: no graph breaks in
inference or training, and the compiled forward computes the eager one. ``aot_eager`` traces
through dynamo and AOTAutograd as inductor would, without generating C++ (fast on CPU)."""
import pytest
import torch

from groupmix_backbones.registry import BACKBONES
from test_contract import build
from test_layers import CountOps

CLASSES = [(cls, next(iter(cls.arch_zoo))) for cls in BACKBONES]
IDS = [cls.__name__ for cls, _ in CLASSES]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled_targets(module, *inputs):
    """The targets of the nodes of the graphs that ``torch.compile`` (dynamic) gives ``module``."""
    graphs = []

    def keep_graph(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    with torch.no_grad():
        torch.compile(module, backend=keep_graph, dynamic=True)(*inputs)
    return [str(node.target) for graph in graphs for node in graph.graph.nodes]


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


@pytest.mark.parametrize('cls,name', [c for c in CLASSES if c[0].__name__ == 'FLattenSwin'],
                         ids=['FLattenSwin'])
def test_dynamic_compile_serves_other_sizes_without_recompiling(cls, name):
    """``compile_dynamic`` (``tools/test.py --compile``, ``benchmark.py --compile``): a second
    image size (shifted windows, pads and masks all computed from it) reuses the graph of the
    first; the compiled forward computes the eager one at both."""
    from torch._dynamo.utils import counters

    from groupmix_backbones.deployment import compile_dynamic
    model = compile_dynamic(build(cls, name).eval(), backend='eager')  # dynamo's guards
    counters.clear()
    graphs = []
    with torch.no_grad():
        for h, w in ((45, 61), (67, 53)):
            x = torch.randn(2, 3, h, w)
            for got, want in zip(model(x), model.forward(x)):  # forward: the eager module
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            graphs.append(counters['stats']['unique_graphs'])
    assert graphs == [1, 1], graphs


def test_compiled_shifted_windows_roll_by_slices():
    """Dynamo answers ``torch.compiler.is_exporting()`` with True under torch.compile too, which
    made compiled Swin blocks roll by a shift computed in the graph (an ``index_select`` at
    computed indices; ``torch.roll`` decomposes into one as well), and inductor's C++ code for
    such indices in tiled transposes did not compile (U-Swin, torch 2.11: "'tmp21' was not
    declared"). Compiled, the shift is a number and the roll two slices per side. U-Swin micro
    with all its blocks: at 161x129 stage 3's shifted blocks (11x9 map, windows of 7) roll."""
    torch.manual_seed(0)
    model = next(cls for cls in BACKBONES if cls.__name__ == 'UnifiedSwin')(arch='micro').eval()
    targets = set(compiled_targets(model, torch.randn(1, 3, 161, 129)))
    assert not {t for t in targets if 'index_select' in t or 'roll' in t}, targets
    assert any('method cat' in t for t in targets), targets


SOFTMAX_ATTENTION = [(cls, name) for cls, name in CLASSES if cls.__name__ in (
    'FLattenCSWin', 'FLattenSwin', 'SGFormer', 'UnifiedPVT', 'UnifiedHaloNet', 'UnifiedSwin')]


@pytest.mark.parametrize('cls,name', SOFTMAX_ATTENTION,
                         ids=[cls.__name__ for cls, _ in SOFTMAX_ATTENTION])
def test_compiled_graph_attends_through_sdpa_as_eager_does(cls, name):
    """torch.compile takes eager's attention kernel, not the export's attention written out for
    ONNX Runtime as MatMul and Softmax (``layers.exporting_only``; 0.58x -> 0.87x eager for U-Swin-T
    compiled, docs/deployment.md): each scaled_dot_product_attention of the eager forward is one
    in the compiled graph."""
    model = build(cls, name).eval()
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad(), CountOps() as eager:
        model(x)
    want = eager.names.count('scaled_dot_product_attention')
    assert want and sum('scaled_dot_product_attention' in t for t in
                        compiled_targets(model, x)) == want


def test_compiled_deformable_sampling_keeps_grid_sample_whole():
    """Compiled on CPU, U-InternImage samples through one op (``layers.grid_sample_op``), not
    inductor's decomposition of ``grid_sample`` (5.6x slower than eager at 512x512,
    docs/deployment.md); its fake and its backward give eager's outputs and gradients."""
    cls, name = next(c for c in CLASSES if c[0].__name__ == 'UnifiedInternImage')
    model = build(cls, name).eval()
    x = torch.randn(2, 3, 45, 61)
    targets = compiled_targets(model, x)
    assert any('groupmix_backbones.grid_sample' in t for t in targets), targets
    assert not [t for t in targets if 'grid_sample' in t and 'groupmix' not in t], targets
    results = []
    for run in (model, torch.compile(model, backend='aot_eager', fullgraph=True, dynamic=True)):
        model.zero_grad(set_to_none=True)
        outs = run(x)
        sum(out.square().mean() for out in outs).backward()
        results.append([out.detach() for out in outs] + [p.grad for p in model.parameters()])
    for got, want in zip(results[1], results[0]):  # (layer scales make gradients of 1e-12)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
