"""ONNX export of our task models with dynamic batch, height and width, checked in ONNX Runtime.

The exporter is torch's own ``torch.onnx.export(dynamo=True)`` (``torch.export`` traces with
symbolic sizes, onnxscript writes the graph). The TorchScript exporter (``dynamo=False``) is
deprecated and turns every Python integer our layers compute from a size into a constant. While
exporting, the layers compute pads, masks, shifts and resized position grids from the symbolic
sizes (``models.layers.exporting``). A graph can still declare dynamic inputs and hold a size of
the example somewhere (nothing in the exporter reports it: ONNX Runtime then fails or differs at
other sizes), so :func:`check_onnx` runs every export at other sizes against PyTorch.
"""
import math
import os.path as osp
import shutil
import tempfile
from typing import Iterable, List, NamedTuple, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .models.layers import exporting, to_2tuple

#: ONNX opset of the exported graphs (ONNX Runtime 1.32 runs opsets up to 23)
OPSET = 18
INPUT_NAME = 'input'
#: default export size: at strides 4 to 32, maps of odd sides (129x145 ... 17x19), each larger
#: than every window (up to 12), so that no map, window count or pad is 1 or 0 while tracing
EXPORT_SIZE = (513, 577)


class OnnxMismatchError(RuntimeError):
    """An exported graph that fails, or differs from PyTorch, at some input size."""


class ShapeAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` (the original op in eager mode) whose exported graph computes its
    bins from the input size: torch's decomposition of the op fixes the example's bins (mmseg's
    pyramid pooling then fails at other sizes). Each bin's mean is a difference of cumulative
    sums at bin edges ``floor(i * n / bins)`` and ``ceil((i + 1) * n / bins)``, as the op's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not exporting():
            return super().forward(x)
        for dim, bins in zip((2, 3), to_2tuple(self.output_size)):
            x = _adaptive_mean(x, dim, bins if bins is not None else x.shape[dim])
        return x


def _adaptive_mean(x: torch.Tensor, dim: int, bins: int) -> torch.Tensor:
    size, index = x.shape[dim], torch.arange(bins, device=x.device)
    start, end = index * size // bins, ((index + 1) * size + bins - 1) // bins
    sums = x.cumsum(dim)
    sums = torch.cat([torch.zeros_like(sums.narrow(dim, 0, 1)), sums], dim)  # sums[:, 0] = 0
    count = (end - start).to(x.dtype).reshape([-1 if d == dim else 1 for d in range(x.dim())])
    return (sums.index_select(dim, end) - sums.index_select(dim, start)) / count


class ExportForward(nn.Module):
    """What an exported graph computes from a normalised image batch (B, 3, H, W) (the data
    preprocessor's mean/std and channel order are not in the graph):

    * mmpretrain classifier: class logits (B, classes);
    * mmseg segmentor: ``encode_decode`` logits resized to the input, (B, classes, H, W) (its
      adaptive poolings become :class:`ShapeAdaptiveAvgPool2d`);
    * ``backbone_only``: the backbone's maps, through the config's neck if it has one (mmdet:
      FPN; mmpretrain: pooling). An mmdet detector exports this way only: its RoI heads (NMS,
      RoIAlign, per-image box lists) need mmdeploy's rewrites and custom ops.
    """

    def __init__(self, model: nn.Module, scope: str, backbone_only: bool = False):
        super().__init__()
        if scope not in ('mmpretrain', 'mmdet', 'mmseg'):
            raise ValueError(f'default_scope {scope!r}: ONNX export takes mmpretrain, mmdet or '
                             f'mmseg configs.')
        if scope == 'mmdet' and not backbone_only:
            raise ValueError('An mmdet detector exports its backbone and neck only (add '
                             '--backbone-only): its RoI heads need mmdeploy (see the README).')
        self.model, self.scope, self.backbone_only = model, scope, backbone_only
        for module in model.modules():  # (the same op in eager mode: see the class)
            if type(module) is nn.AdaptiveAvgPool2d:
                module.__class__ = ShapeAdaptiveAvgPool2d

    def forward(self, inputs: torch.Tensor):
        if self.backbone_only:
            maps = self.model.backbone(inputs)
            if getattr(self.model, 'with_neck', False):
                maps = self.model.neck(maps)
            return tuple(maps)
        if self.scope == 'mmseg':  # the size to resize the logits to: the input's own
            return self.model.encode_decode(inputs, [dict(img_shape=inputs.shape[2:])])
        return self.model(inputs, mode='tensor')


def _fusable_gelu(x, approximate: str = 'none'):
    """``aten.gelu`` written for ONNX Runtime: ``x * (1 + erf(x / sqrt(2))) * 0.5``, the order its
    graph optimiser fuses into one Gelu kernel (torch's own translation scales by 0.5 before
    multiplying by x, which it leaves as five elementwise passes: FLatten-PVTv2-b0, batch 8 at
    224, 204 -> 173 ms a step). The tanh approximation as torch's formula."""
    from onnxscript import opset18 as op
    if approximate == 'tanh':
        inner = op.Mul(op.CastLike(math.sqrt(2 / math.pi), x),
                       op.Add(x, op.Mul(op.CastLike(0.044715, x), op.Mul(x, op.Mul(x, x)))))
        gate = op.Tanh(inner)
    else:
        gate = op.Erf(op.Div(x, op.CastLike(math.sqrt(2), x)))
    return op.Mul(op.Mul(x, op.Add(gate, op.CastLike(1.0, x))), op.CastLike(0.5, x))


def output_tensors(out) -> List[torch.Tensor]:
    """The tensors of a model output (a tensor or a tuple/list of them), in order."""
    return [out] if torch.is_tensor(out) else [t for item in out for t in output_tensors(item)]


def export_onnx(module: nn.Module, example: torch.Tensor, path: str, opset: int = OPSET) -> str:
    """Export ``module`` (eval mode) called on ``example`` (B, 3, H, W) to ``path`` with dynamic
    batch, height and width; returns ``path``.

    The example's sizes shape the graph: a batch of 1, or any map, window count or pad of size 1
    or 0 at the example, may be fixed in it (the exporter takes ``n == 1`` and ``pad == 0`` for
    facts about every size). So ``example`` needs a batch of at least 2, and sides such that every
    stage's map has an odd side, larger than its window: :data:`EXPORT_SIZE` (513x577) serves
    every arch (windows up to 12); 257x289 the archs with windows up to 7."""
    if example.dim() != 4 or example.shape[0] < 2 or min(example.shape[2:]) < 64:
        raise ValueError(f'The example input must be (B, C, H, W) with B >= 2 and H, W >= 64 '
                         f'(sizes of 1 would be fixed in the graph; {EXPORT_SIZE} serves every '
                         f'arch), got {tuple(example.shape)}.')
    dynamic = torch.export.Dim.DYNAMIC
    translations = {torch.ops.aten.gelu.default: _fusable_gelu}
    program = torch.onnx.export(module.eval(), (example, ), dynamo=True, opset_version=opset,
                                input_names=[INPUT_NAME],
                                dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic}, ),
                                custom_translation_table=translations,
                                verbose=False)
    program.save(path)
    return path


def compile_dynamic(model: nn.Module, backend: str = 'inductor') -> nn.Module:
    """``torch.compile`` in place (``nn.Module.compile``: state dict keys unchanged) a task model's
    backbone and neck (a bare module: itself; a wrapper's ``module``: that) with dynamic sizes:
    batch, height and width are symbolic from the first call, so other image sizes reuse the
    compiled code instead of recompiling per size (a batch of 1 and one of more compile once
    each, as sizes 0 and 1 always do). Returns ``model``."""
    model = getattr(model, 'module', model)  # TTA and DistributedDataParallel wrappers
    parts = [part for part in (getattr(model, name, None) for name in ('backbone', 'neck'))
             if isinstance(part, nn.Module)]
    for part in parts or [model]:
        part.compile(backend=backend, dynamic=True)
    return model


#: ONNX Runtime's graph optimisation levels by name (``all``: its default; layout-specific
#: fusions included)
ORT_OPTIMIZATION = ('disable', 'basic', 'extended', 'all')


def onnx_session(path, threads: int = 0, *, optimization: str = 'all', arena: bool = True,
                 spinning: bool = True):
    """An ONNX Runtime CPU session of ``path`` (a file or the bytes of a model) with the options
    that matter on CPU: ``threads`` intra-op threads (0: ONNX Runtime's default, one per physical
    core) and one inter-op thread (sequential execution); the graph ``optimization`` level (one of
    :data:`ORT_OPTIMIZATION`); the CPU memory ``arena`` (reuses buffers across runs; off: less
    memory held between calls); ``spinning`` intra-op threads (waiting threads spin during a
    run: lower latency), which stop spinning when the run returns, so that the work between runs
    (pre- and post-processing, PyTorch) has the cores: left spinning, they made a FLatten-PVTv2-b0
    eager step that followed a run 1.3x slower on 2 cores (docs/deployment.md)."""
    import onnxruntime as ort
    if optimization not in ORT_OPTIMIZATION:
        raise ValueError(f'ONNX Runtime optimisation {optimization!r}: choose one of '
                         f'{", ".join(ORT_OPTIMIZATION)}.')
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its constant-folding notes on every load are not for users
    level = 'DISABLE_ALL' if optimization == 'disable' else f'ENABLE_{optimization.upper()}'
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f'ORT_{level}')
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry('session.intra_op.allow_spinning', '1' if spinning else '0')
    options.add_session_config_entry('session.force_spinning_stop', '1')
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


class OnnxRuntimeModel(nn.Module):
    """An ONNX Runtime session called like the module it was exported from: an image batch
    tensor in, a tuple of tensors out (for the benchmark's timing loop). ``options``:
    :func:`onnx_session`'s."""

    def __init__(self, path: str, threads: int = 0, **options):
        super().__init__()
        self.session = onnx_session(path, threads, **options)

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs = self.session.run(None, {INPUT_NAME: inputs.detach().cpu().numpy()})
        return tuple(torch.from_numpy(out) for out in outputs)


def quantize_int8(path: str, out: str, calibration: Iterable[np.ndarray] = None) -> str:
    """ONNX Runtime's int8 quantization of ``path`` into ``out``; returns ``out``.

    The MatMuls and Gemms of a weight (linear layers, projections) get int8 weights per output
    channel, their activations quantized at run time per tensor (dynamic: no calibration set).
    With ``calibration`` (image batches as the graph takes them, float32 arrays), the
    convolutions of one group (PVTv2-style MLPs on the map, patch embeddings) are quantized
    first, statically: int8 weights per output channel and uint8 activations at the ranges seen
    on those batches (QuantizeLinear / DequantizeLinear pairs that ONNX Runtime runs as
    QLinearConv). Depthwise convolutions, norms and attention's own products stay float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    linear = [node.name for node in _nodes_of_weights(onnx.load(path).graph, ('MatMul', 'Gemm'))]
    with tempfile.TemporaryDirectory() as folder:
        if calibration is not None:
            path = _calibrated_convolutions(path, calibration, folder)
        if not linear:  # (an empty list would mean every node to ONNX Runtime)
            shutil.copyfile(path, out)
            return out
        # (of a weight in the export: after the calibration's constant folding, products of
        # learned grids with interpolation matrices would qualify too)
        quantize_dynamic(path, out, op_types_to_quantize=['MatMul', 'Gemm'],
                         nodes_to_quantize=linear, per_channel=True,
                         weight_type=QuantType.QInt8, extra_options=dict(MatMulConstBOnly=True))
    return out


def _calibrated_convolutions(path: str, calibration: Iterable[np.ndarray], folder: str) -> str:
    """``path`` with its one-group convolutions quantized statically (QDQ) on ``calibration``,
    written in ``folder``; ``path`` itself where it has none."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    folded = osp.join(folder, 'folded.onnx')  # weights computed in the graph become initializers
    quant_pre_process(path, folded, skip_symbolic_shape=True)
    convs = [node.name for node in _nodes_of_weights(onnx.load(folded).graph, ('Conv', ))
             if all(attr.name != 'group' or attr.i == 1 for attr in node.attribute)]
    if not convs:  # (an empty list would mean every node to ONNX Runtime)
        return path
    batches = iter(calibration)

    class Batches(CalibrationDataReader):
        def get_next(self):
            batch = next(batches, None)
            return None if batch is None else {INPUT_NAME: np.asarray(batch, np.float32)}

    static = osp.join(folder, 'static.onnx')
    quantize_static(folded, static, Batches(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=['Conv'], nodes_to_quantize=convs, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return static


def _nodes_of_weights(graph, op_types):
    """The nodes of ``graph`` of one of ``op_types`` whose second input is a weight (an
    initializer)."""
    weights = {init.name for init in graph.initializer}
    return [node for node in graph.node if node.op_type in op_types and node.input[1] in weights]


class OnnxCheck(NamedTuple):
    """One input of :func:`check_onnx`: its ``shape``; ``error``, the largest |ONNX Runtime -
    PyTorch| of the outputs; ``note``: for an SG-Former whose tokens ONNX Runtime orders
    otherwise, how (``error`` is then PyTorch's with ONNX Runtime's token orders), else ''."""
    shape: Tuple[int, ...]
    error: float
    note: str = ''

    def __str__(self):
        return (f'ONNX Runtime vs PyTorch on {"x".join(map(str, self.shape))}: max |difference| '
                f'{self.error:.2g}' + (f' ({self.note})' if self.note else ''))


def check_onnx(path: str, module: nn.Module, inputs: Sequence[torch.Tensor],
               atol: float = 1e-4) -> List[OnnxCheck]:
    """Run ``path`` in ONNX Runtime on each input and compare every output with ``module``'s;
    returns an :class:`OnnxCheck` per input. Raises :class:`OnnxMismatchError` naming the size
    when ONNX Runtime fails, gives other shapes, or differs by more than ``atol``, except where
    SG-Former's token orders explain the difference (:func:`replay_token_orders`)."""
    session, results = onnx_session(path), []
    for x in inputs:
        shape = tuple(x.shape)
        with torch.no_grad():
            expected = output_tensors(module(x))
        try:
            got = session.run(None, {INPUT_NAME: x.numpy()})
        except Exception as error:  # onnxruntime's own exception types are not public API
            raise OnnxMismatchError(
                f'{path} fails in ONNX Runtime on an input of {shape}: a size of the export '
                f'example is fixed in the graph. {type(error).__name__}: {error}') from error
        if [g.shape for g in got] != [tuple(e.shape) for e in expected]:
            raise OnnxMismatchError(
                f'{path} on an input of {shape} gives outputs of shapes '
                f'{[g.shape for g in got]}, PyTorch {[tuple(e.shape) for e in expected]}.')
        error, note = max_difference(got, expected), ''
        if not error <= atol:  # (NaN fails too)
            error, note = replay_token_orders(path, module, x, got, error, atol)
        results.append(OnnxCheck(shape, error, note))
    return results


def max_difference(got: Sequence[np.ndarray], expected: Sequence[torch.Tensor]) -> float:
    """The largest |difference| over pairs of ONNX Runtime and PyTorch outputs of equal shapes."""
    return max(float(np.abs(g - e.numpy()).max()) if g.size else 0.
               for g, e in zip(got, expected))


def replay_token_orders(path: str, module: nn.Module, x: torch.Tensor, got, error: float,
                        atol: float) -> Tuple[float, str]:
    """Why an export whose outputs ``got`` differ from PyTorch on ``x`` by ``error`` > ``atol``.

    SG-Former's significance-guided blocks sort their tokens by the significance map of the block
    before; near-equal values, which float rounding orders otherwise in ONNX Runtime, group the
    tokens otherwise. So PyTorch runs again with every block's token orders taken from ONNX
    Runtime (the file's TopK outputs, paired with the blocks in the order they run). Within
    ``atol`` of ``got`` then, the export computes the model's function with the tokens grouped as
    ONNX Runtime orders them: returns (that difference, a note naming the first block whose
    orders differ, how many ranks, how many tokens in another merged group, and ``error``).
    Raises :class:`OnnxMismatchError` when the arithmetic differs: a model without such blocks,
    orders that all agree, or a difference beyond ``atol`` with ONNX Runtime's orders too."""
    failed = (f'{path} differs from PyTorch on an input of {tuple(x.shape)}: max |difference| '
              f'{error:.3g} > {atol:g}.')
    guided = [(name, m) for name, m in module.named_modules() if hasattr(m, 'scan_orders')]
    if not guided:
        raise OnnxMismatchError(failed)
    ours, hooks = [], [m.register_forward_pre_hook(
        lambda m, args, name=name: ours.append((name, m, m.scan_orders(args[2]))))
        for name, m in guided]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    theirs = onnx_runtime_sorts(path, x)
    if len(theirs) != 2 * len(ours):
        raise OnnxMismatchError(
            f'{failed} The graph has {len(theirs)} TopK sorts for {len(ours)} '
            f'significance-guided blocks run: their token orders cannot be paired.')
    theirs = [theirs[i:i + 2] for i in range(0, len(theirs), 2)]
    differ = next((report for report in (
        order_difference(name, block, orders, their_orders)
        for (name, block, orders), their_orders in zip(ours, theirs)) if report), '')
    if not differ:
        raise OnnxMismatchError(f'{failed} The token orders of all {len(ours)} '
                                f'significance-guided blocks agree: the arithmetic differs.')
    given = iter(theirs)
    for _, block in guided:  # (an instance attribute before the class's static method)
        block.scan_orders = lambda significance: next(given)
    try:
        with torch.no_grad():
            replayed = max_difference(got, output_tensors(module(x)))
    finally:
        for _, block in guided:
            del block.scan_orders
    if replayed <= atol:
        return replayed, (f'PyTorch given ONNX Runtime\'s token orders: {differ}; with its '
                          f'own orders it differs by {error:.3g}')
    raise OnnxMismatchError(
        f'{failed} Token groups differ: {differ}. With ONNX Runtime\'s token orders PyTorch '
        f'still differs by {replayed:.3g}: the arithmetic differs too.')


def onnx_runtime_sorts(path: str, x: torch.Tensor) -> List[torch.Tensor]:
    """The sort orders (TopK's second outputs) of the graph in ``path`` on ``x``, in the
    graph's order."""
    import onnx
    graph = onnx.load(path)
    sorts = [node.output[1] for node in graph.graph.node if node.op_type == 'TopK']
    if not sorts:
        return []
    graph.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64,
                                                                 None) for name in sorts)
    session = onnx_session(graph.SerializeToString())
    return [torch.from_numpy(order) for order in session.run(sorts, {INPUT_NAME: x.numpy()})]


def order_difference(name: str, block: nn.Module, orders, theirs) -> str:
    """How two pairs of token orders (row- and column-major scans) of one significance-guided
    block differ: '' when equal, else the ranks and the tokens in another merged group."""
    ranks = moved = 0
    for order, their in zip(orders, theirs):
        group = block.group_of_rank(order.shape[1]).expand_as(order)
        ranks += int((order != their).sum())
        moved += int((torch.empty_like(order).scatter_(1, order, group)
                      != torch.empty_like(order).scatter_(1, their, group)).sum())
    if not ranks:
        return ''
    return (f'{name} (the first significance-guided block whose order differs; later ones see '
            f'other inputs) ranks {ranks} of {2 * orders[0].numel()} tokens (both scans) '
            f'otherwise, {moved} into another merged group: near-equal significance values that '
            f'float rounding orders otherwise')
