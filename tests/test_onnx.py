"""ONNX export at any size: every registered class (one or two blocks per stage) exported once
at 257x289 (every stage's map odd and larger than a 7 window) and run in ONNX Runtime at three
sizes, one odd, against PyTorch; the export tool on a classifier, a UperNet segmentor and a Mask
R-CNN's backbone + FPN, from checkpoints on disk."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

import groupmix_backbones  # noqa: F401
from groupmix_backbones.analysis import build_model
from groupmix_backbones.deployment import ExportForward, OnnxMismatchError, check_onnx, export_onnx
from groupmix_backbones.registry import BACKBONES

from conftest import REPO, load_tool

CLASSES = list(BACKBONES)
EXAMPLE = (2, 3, 257, 289)
CHECK_SIZES = [(1, 64, 64), (2, 45, 71), (1, 96, 96)]  # (batch, height, width)
ATOL = 1e-4


#: classes whose blocks alternate (Swin's shifted windows): two blocks per stage, so that both
#: kinds export; SG-Former: two in the first stage only (its significance-guided block, sorting
#: tokens by the map of the hybrid-scale block before it, exports in about a minute).
TWO_BLOCKS = {'FLattenSwin': 4, 'UnifiedSwin': 4, 'SGFormer': 1}


def small_backbone(cls):
    """The class's first arch with one block per stage (two in the first stages of
    :data:`TWO_BLOCKS`), eval mode. SG-Former's q/k weights are drawn larger: near-uniform
    attention makes near-equal significance values, whose sort order float rounding decides."""
    arch = dict(cls.arch_zoo[next(iter(cls.arch_zoo))])
    stages = len(arch['depths'])
    arch['depths'] = [2 if i < TWO_BLOCKS.get(cls.__name__, 0) else 1 for i in range(stages)]
    torch.manual_seed(0)
    model = cls(arch=arch).eval()
    if cls.__name__ == 'SGFormer':
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.dim() == 2 and re.search(r'(^|_)(q|kv)$', name.split('.')[-2]):
                    param.normal_(0, 0.15)
    return model


def inputs(sizes):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(b, 3, h, w, generator=generator) for b, h, w in sizes]


@pytest.mark.parametrize('cls', CLASSES, ids=[cls.__name__ for cls in CLASSES])
def test_backbone_runs_at_any_size_from_one_file(cls, tmp_path):
    model, example = small_backbone(cls), torch.randn(EXAMPLE)
    path = export_onnx(model, example, str(tmp_path / 'backbone.onnx'))
    checks = check_onnx(path, model, inputs(CHECK_SIZES), atol=ATOL)
    # the example too: its stage-3 maps are larger than a window (Swin's shift applies there).
    # SG-Former's 4745 stage-1 tokens there leave near-equal significance values that float
    # rounding may order otherwise in ONNX Runtime (checked with its orders then: the note); its
    # large q/k weights (sharp attention) leave up to 2e-4 with the same orders (2026-12-07)
    checks += check_onnx(path, model, [example], atol=1e-3 if cls.__name__ == 'SGFormer' else ATOL)
    assert [check.shape for check in checks] == [(b, 3, h, w) for b, h, w in CHECK_SIZES] + [
        EXAMPLE]


class ScanOrders(torch.nn.Module):
    """SG-Former's token orders of a significance map with many exact ties."""

    def forward(self, x):
        from groupmix_backbones.models.sgformer import SignificanceGuidedAttention
        return torch.cat(SignificanceGuidedAttention.scan_orders(x.mean(1).round()), dim=1)


def test_sgformer_orders_exact_ties_as_pytorch(tmp_path):
    """ONNX's TopK orders equal values by index, as PyTorch's stable sort."""
    module = ScanOrders()
    path = export_onnx(module, torch.randn(2, 3, 65, 67), str(tmp_path / 'orders.onnx'))
    checks = check_onnx(path, module, [2 * x for x in inputs([(1, 64, 64), (2, 65, 67)])],
                        atol=0)
    assert [check.error for check in checks] == [0, 0]


def test_sgformer_check_replays_onnx_runtime_token_orders(tmp_path):
    """Where SG-Former's token orders differ, the check runs PyTorch with ONNX Runtime's: equal
    then, it passes and says how the orders differ; else it fails, saying the arithmetic does."""
    model = small_backbone(next(c for c in CLASSES if c.__name__ == 'SGFormer'))
    path = export_onnx(model, torch.randn(EXAMPLE), str(tmp_path / 'sgformer.onnx'))
    import onnx
    # the significance's means are exported as products (ONNX Runtime's ReduceMean is slow there)
    assert 'ReduceMean' not in {node.op_type for node in onnx.load(path).graph.node}
    x = inputs([(1, 64, 64)])
    assert check_onnx(path, model, x, atol=ATOL)[0].note == ''
    # PyTorch alone sorts by the significance map mirrored: other orders, the same arithmetic
    significance = model.stages[0].blocks[0].attn.significance
    hook = significance.register_forward_hook(lambda m, args, out: out.flip(-1))
    [check] = check_onnx(path, model, x, atol=ATOL)
    note = re.fullmatch(r"PyTorch given ONNX Runtime's token orders: stages\.0\.blocks\.1\.attn "
                        r"\(.*\) ranks (\d+) of 512 tokens \(both scans\) otherwise, (\d+) into "
                        r"another merged group: .*; with its own orders it differs by (\S+)",
                        check.note)
    assert check.error <= ATOL and note and int(note[1]) >= int(note[2]) > 0
    assert float(note[3]) > ATOL
    guided = model.stages[0].blocks[1].attn
    assert 'scan_orders' not in vars(guided)  # the replay's orders are gone after the check
    with torch.no_grad():  # after the sort: other arithmetic too
        guided.aggregators[0].weight.mul_(2)
    with pytest.raises(OnnxMismatchError, match=r'Token groups differ: stages\.0\.blocks\.1\.attn '
                                                r'.* still differs by .*: the arithmetic differs'):
        check_onnx(path, model, x, atol=ATOL)
    hook.remove()
    with pytest.raises(OnnxMismatchError, match='orders of all 1 significance-guided blocks '
                                                'agree: the arithmetic differs'):
        check_onnx(path, model, x, atol=ATOL)


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_gelu_exports_as_one_onnx_runtime_kernel(approximate, tmp_path):
    """Exact GELU becomes one Gelu in ONNX Runtime's optimised graph (torch's own translation
    stays five elementwise ops); both GELUs compute PyTorch's."""
    import onnx
    import onnxruntime as ort
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.GELU(approximate)).eval()
    path = export_onnx(model, torch.randn(2, 3, 64, 64), str(tmp_path / 'gelu.onnx'))
    check_onnx(path, model, [3 * x for x in inputs(CHECK_SIZES)], atol=1e-5)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'optimised.onnx')
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    ops = {node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node}
    assert ('Gelu' in ops and 'Erf' not in ops) == (approximate == 'none'), ops


def test_a_size_fixed_in_the_graph_is_reported(tmp_path):
    """A graph that holds the example's size (here: exported without dynamic sizes) fails the
    check loudly, naming the input size."""
    model = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    path = str(tmp_path / 'fixed.onnx')
    torch.onnx.export(model, (torch.randn(2, 3, 64, 64), ), dynamo=True, input_names=['input'],
                      verbose=False).save(path)
    check_onnx(path, model, inputs([(2, 64, 64)]))
    with pytest.raises(OnnxMismatchError, match=r'\(1, 3, 45, 71\)'):
        check_onnx(path, model, inputs([(1, 45, 71)]))


def test_detector_needs_backbone_only():
    model, scope = build_model(osp.join(
        REPO, 'mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py'))
    with pytest.raises(ValueError, match='--backbone-only'):
        ExportForward(model, scope)


TOOL_CASES = {  # config, extra arguments
    'classifier': ('mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py', []),
    'upernet': ('mmseg_cfgs/groupmixformer/upernet_groupmixformer-micro_demo.py', []),
    'backbone+fpn': ('mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py',
                     ['--backbone-only']),
}


@pytest.mark.parametrize('case', list(TOOL_CASES))
def test_export_tool(case, tmp_path, capsys):
    config, extra = TOOL_CASES[case]
    config = osp.join(REPO, config)
    model, scope = build_model(config)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = str(tmp_path / 'model.onnx')
    load_tool('tools/deployment/pytorch2onnx.py').main(
        [config, checkpoint, '--out', out, '--shape', '257', '289', '--check-shape', '45', '71',
         *extra])
    printed = capsys.readouterr().out
    assert 'on 2x3x257x289' in printed and 'on 1x3x45x71' in printed
    # a third size from the same file, against the model with the saved weights
    module = ExportForward(model, scope, backbone_only=bool(extra))
    checks = check_onnx(out, module, inputs([(1, 96, 96)]), atol=ATOL)
    assert checks[0].shape == (1, 3, 96, 96)
    if case == 'upernet':  # logits at the input size
        with torch.no_grad():
            assert module(inputs([(1, 45, 71)])[0]).shape[2:] == (45, 71)


def test_tool_refuses_a_wrong_checkpoint(tmp_path):
    config = osp.join(REPO, 'mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py')
    checkpoint = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'backbone.unknown': torch.zeros(1)}}, checkpoint)
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    with pytest.raises(SystemExit, match='does not fit'):
        tool.main([config, checkpoint, '--out', str(tmp_path / 'x.onnx')])
    assert not osp.exists(tmp_path / 'x.onnx')


def test_tool_loads_through_the_safe_loader(tmp_path):
    """A checkpoint that would run code when unpickled is refused, not executed."""
    from groupmix_backbones.safe_checkpoint import UnsafeCheckpointError
    config = osp.join(REPO, 'mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py')
    checkpoint = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': Config}, checkpoint)  # a class: reflective
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    with pytest.raises(UnsafeCheckpointError):
        tool.main([config, str(checkpoint), '--out', str(tmp_path / 'x.onnx')])


def quantized_convolutions(path):
    """{group of each Conv of ``path``: how many of them read DequantizeLinear weights, of how
    many} (QDQ: statically quantized)."""
    import onnx
    graph = onnx.load(path).graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    counts = {}
    for node in graph.node:
        if node.op_type == 'Conv':
            group = next((attr.i for attr in node.attribute if attr.name == 'group'), 1)
            quantized, seen = counts.get(group > 1, (0, 0))
            counts[group > 1] = (quantized + (producers.get(node.input[1]) == 'DequantizeLinear'),
                                 seen + 1)
    return counts


def op_count(path, op_type, of_weights=False):
    """How many ``op_type`` nodes ``path`` has (``of_weights``: whose second input is a
    weight)."""
    import onnx
    graph = onnx.load(path).graph
    weights = {init.name for init in graph.initializer}
    return sum(node.op_type == op_type and (not of_weights or node.input[1] in weights)
               for node in graph.node)


def test_int8_quantization(tmp_path):
    """Dynamic int8 quantizes every MatMul of a weight (the linear layers); with a calibration set
    the one-group convolutions too (QDQ), never the depthwise ones; both files run at another size
    near float32."""
    from groupmix_backbones.deployment import onnx_session, quantize_int8
    pvtv2 = next(cls for cls in CLASSES if cls.__name__ == 'FLattenPVTv2')
    path = export_onnx(small_backbone(pvtv2), inputs([(2, 129, 145)])[0],
                       str(tmp_path / 'float.onnx'))
    linear_layers = op_count(path, 'MatMul', of_weights=True)
    dynamic = quantize_int8(path, str(tmp_path / 'dynamic.onnx'))
    calibration = [x.numpy() for x in inputs([(2, 96, 112), (1, 129, 145)])]
    calibrated = quantize_int8(path, str(tmp_path / 'calibrated.onnx'), calibration)
    for file in (dynamic, calibrated):
        assert op_count(file, 'MatMulInteger') == linear_layers > 0
    assert quantized_convolutions(dynamic) == {False: (0, 12), True: (0, 8)}
    # 4 patch embeddings, fc1 and fc2 of the 4 MLPs; the MLPs' and attention's depthwise ones not
    assert quantized_convolutions(calibrated) == {False: (12, 12), True: (0, 8)}
    x = inputs([(1, 64, 80)])[0].numpy()
    expected = onnx_session(path).run(None, {'input': x})
    for file in (dynamic, calibrated):
        for got, want in zip(onnx_session(file).run(None, {'input': x}), expected):
            assert got.shape == want.shape
            assert abs(got - want).max() < 0.1 * abs(want).max()


def test_export_tool_quantizes_calibrated_on_training_images(tmp_path, demo_root, capsys):
    """``--quantize int8 --calibration-images N``: convolutions calibrated on the config's training
    images; top-1 agreement with float32 on its test images; the counts need --quantize."""
    cfg = Config.fromfile(osp.join(REPO, 'mmpretrain_cfgs/flatten/flatten-pvtv2-b0_demo.py'))
    cfg.merge_from_dict({f'{split}_dataloader.dataset.data_root': osp.join(demo_root, 'imagenet')
                         for split in ('train', 'val', 'test')})
    config = str(tmp_path / 'demo.py')
    cfg.dump(config)
    model, _ = build_model(cfg)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    out = str(tmp_path / 'model.onnx')
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    tool.main([config, checkpoint, '--out', out, '--shape', '97', '113', '--check-shape', '64',
               '64', '--quantize', 'int8', '--calibration-images', '3', '--agreement-images', '2'])
    printed = capsys.readouterr().out
    assert re.search(r'top-1 agreement [0-2]/2 ', printed)
    assert 'calibrated on 3 training images' in printed
    assert quantized_convolutions(str(tmp_path / 'model.int8.onnx'))[False][0] > 0
    for wrong in (['--calibration-images', '3'], ['--quantize', 'int8', '--agreement-images', '0']):
        with pytest.raises(SystemExit):
            tool.main([config, checkpoint, '--out', str(tmp_path / 'x.onnx'), *wrong])
        assert 'takes a number of images' in capsys.readouterr().err
    # a training set wrapped in another dataset: its images have no pipeline to replace
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=cfg.train_dataloader.dataset)
    cfg.dump(config)
    with pytest.raises(ValueError, match='RepeatDataset without a pipeline of its own'):
        next(tool.preprocessed_batches(config, 'train'))


def test_session_options(tmp_path):
    """The session's CPU options: threads spin during a run only (left spinning after it, they
    slowed the PyTorch step that followed 1.3x on 2 cores); an unknown level says which exist."""
    from groupmix_backbones.deployment import onnx_session
    model = torch.nn.Conv2d(3, 4, 1).eval()
    path = export_onnx(model, torch.randn(2, 3, 64, 64), str(tmp_path / 'conv.onnx'))
    for spinning in (True, False):
        options = onnx_session(path, 2, spinning=spinning).get_session_options()
        assert options.get_session_config_entry('session.force_spinning_stop') == '1'
        assert options.get_session_config_entry('session.intra_op.allow_spinning') == str(
            int(spinning))
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    with pytest.raises(ValueError, match='choose one of disable, basic, extended, all'):
        onnx_session(path, optimization='fast')
