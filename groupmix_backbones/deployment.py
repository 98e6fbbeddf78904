"""ONNX export of our task models with dynamic batch, height and width, checked in ONNX Runtime.

The exporter is torch's own ``torch.onnx.export(dynamo=True)`` (``torch.export`` traces with
symbolic sizes, onnxscript writes the graph). The TorchScript exporter (``dynamo=False``) is
deprecated and turns every Python integer our layers compute from a size into a constant. While
exporting, the layers compute pads, masks, shifts and resized position grids from the symbolic
sizes (``models.layers.exporting``). A graph can still declare dynamic inputs and hold a size of
the example somewhere (nothing in the exporter reports it: ONNX Runtime then fails or differs at
other sizes), so :func:`check_onnx` runs every export at other sizes against PyTorch.
"""
from typing import List, Sequence, Tuple

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


class TokenOrderMismatch(OnnxMismatchError):
    """An SG-Former export that differs from PyTorch because near-equal significance values order
    its tokens otherwise (:func:`token_order_report`): its arithmetic is not shown wrong."""


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
    program = torch.onnx.export(module.eval(), (example, ), dynamo=True, opset_version=opset,
                                input_names=[INPUT_NAME],
                                dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic}, ),
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
    memory held between calls); ``spinning`` intra-op threads (waiting threads spin: lower
    latency, but they take cores from other processes)."""
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


def quantize_int8(path: str, out: str) -> str:
    """ONNX Runtime's dynamic int8 quantization of ``path`` into ``out``: the weights of every
    MatMul and Gemm (the linear layers, attention's projections) stored as int8 per output
    channel, activations quantized at run time per tensor (no calibration set); convolutions,
    norms and attention's own products stay float32. Returns ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(path, out, op_types_to_quantize=['MatMul', 'Gemm'], per_channel=True,
                     weight_type=QuantType.QInt8, extra_options=dict(MatMulConstBOnly=True))
    return out


def check_onnx(path: str, module: nn.Module, inputs: Sequence[torch.Tensor],
               atol: float = 1e-4) -> List[Tuple[Tuple[int, ...], float]]:
    """Run ``path`` in ONNX Runtime on each input and compare every output with ``module``'s;
    returns (input shape, max |difference|) per input. Raises :class:`OnnxMismatchError` naming
    the size when ONNX Runtime fails, gives other shapes, or differs by more than ``atol``."""
    session, results = onnx_session(path), []
    for x in inputs:
        shape = tuple(x.shape)
        with torch.no_grad():
            expected = [t.numpy() for t in output_tensors(module(x))]
        try:
            got = session.run(None, {INPUT_NAME: x.numpy()})
        except Exception as error:  # onnxruntime's own exception types are not public API
            raise OnnxMismatchError(
                f'{path} fails in ONNX Runtime on an input of {shape}: a size of the export '
                f'example is fixed in the graph. {type(error).__name__}: {error}') from error
        if [g.shape for g in got] != [e.shape for e in expected]:
            raise OnnxMismatchError(
                f'{path} on an input of {shape} gives outputs of shapes '
                f'{[g.shape for g in got]}, PyTorch {[e.shape for e in expected]}.')
        error = max(float(np.abs(g - e).max()) if g.size else 0. for g, e in zip(got, expected))
        if not error <= atol:  # (NaN fails too)
            report, groups_differ = token_order_report(path, module, x)
            raise (TokenOrderMismatch if groups_differ else OnnxMismatchError)(
                f'{path} differs from PyTorch on an input of {shape}: max |difference| '
                f'{error:.3g} > {atol:g}.{report}')
        results.append((shape, error))
    return results


def token_order_report(path: str, module: nn.Module, x: torch.Tensor) -> Tuple[str, bool]:
    """Why an export with SG-Former's significance-guided blocks differs on ``x``: the first
    block whose token order (each block's sort of the significance map before it) differs between
    ONNX Runtime and PyTorch, with how many ranks and how many tokens in another merged group
    (near-equal significance values that float rounding orders otherwise; later blocks then see
    other inputs), or that every order agrees, so that the arithmetic differs; and whether the
    token groups differ. ('', False) for a model without such blocks."""
    import onnx
    import onnxruntime as ort
    guided = [(name, m) for name, m in module.named_modules() if hasattr(m, 'scan_orders')]
    if not guided:
        return '', False
    ours, hooks = [], [m.register_forward_pre_hook(
        lambda m, args, name=name: ours.append((name, m, m.scan_orders(args[2]))))
        for name, m in guided]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    graph = onnx.load(path)
    sorts = [node.output[1] for node in graph.graph.node if node.op_type == 'TopK']
    if len(sorts) != 2 * len(ours):
        return (f' The graph has {len(sorts)} TopK sorts for {len(ours)} significance-guided '
                f'blocks run: their token orders cannot be paired.'), False
    graph.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64,
                                                                 None) for name in sorts)
    session = ort.InferenceSession(graph.SerializeToString(), providers=['CPUExecutionProvider'])
    got = iter(torch.from_numpy(order) for order in session.run(sorts, {INPUT_NAME: x.numpy()}))
    for name, block, orders in ours:
        ranks = moved = 0
        for order, theirs in zip(orders, (next(got), next(got))):
            group = block.group_of_rank(order.shape[1]).expand_as(order)
            ranks += int((order != theirs).sum())
            moved += int((torch.empty_like(order).scatter_(1, order, group)
                          != torch.empty_like(order).scatter_(1, theirs, group)).sum())
        if ranks:
            return (f' Token groups differ: {name} (the first significance-guided block that '
                    f'differs; later ones see other inputs) ranks {ranks} of '
                    f'{2 * orders[0].numel()} tokens (both scans) otherwise in ONNX Runtime, '
                    f'{moved} into another merged group: near-equal significance values that '
                    f'float rounding orders otherwise.'), True
    return (f' The token orders of all {len(ours)} significance-guided blocks agree: the '
            f'arithmetic differs.'), False
