"""tools/analysis_tools/benchmark.py's table: our columns for any config, the official columns
against a stand-in official clone (tests/test_compare_official.py), and one that fails."""
import pytest

from conftest import load_tool
from test_compare_official import CONFIG, write_stand_in

FAST = ['--batch-size', '1', '--repeat', '1', '--rounds', '1', '--warmup', '1']


def table(path):
    lines = [line for line in path.read_text().splitlines() if line.startswith('|')]
    head = [cell.strip() for cell in lines[0].strip('|').split('|')]
    return [dict(zip(head, (cell.strip() for cell in line.strip('|').split('|'))))
            for line in lines[2:]]


def test_table_of_several_configs(tmp_path, in_repo):
    out = tmp_path / 'table.md'
    load_tool('tools/analysis_tools/benchmark.py').main(
        [CONFIG, 'mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py',
         '--backbone-only', '--shape', '45', '61', '--shape', '33', '47', '--markdown', str(out),
         *FAST])
    # fused: inference only
    load_tool('tools/analysis_tools/benchmark.py').main(
        [CONFIG, '--fuse', '--mode', 'infer', '--no-flops', '--markdown', str(tmp_path / 'f.md'),
         *FAST])
    assert float(table(tmp_path / 'f.md')[0]['Infer img/s (fused)']) > 0
    with pytest.raises(SystemExit):
        load_tool('tools/analysis_tools/benchmark.py').main([CONFIG, '--fuse', *FAST])
    assert out.read_text().startswith('Measured ')
    rows = table(out)
    assert [(row['Config'], row['Input']) for row in rows] == [
        (f'{name} (backbone)', size) for name in ('groupmixformer-mini_8xb128_in1k',
                                                  'mask-rcnn_groupmixformer-micro_fpn_demo')
        for size in ('1x45x61', '1x33x47')]
    for row in rows:
        assert float(row['Params (M)']) > 1 and float(row['FLOPs (G)']) > 0
        assert float(row['Infer img/s']) > 0 and float(row['Train step (ms)']) > 0
        assert float(row['Train peak (MiB)']) >= 0


BROKEN = {  # official models that cannot run, or be built, at another size
    'run': ('GroupMixFormer.forward = lambda self, x: x.view(-1, 7)', 'fails (RuntimeError)'),
    'build': ('def refuse(self, *args, **kwargs):\n    raise ValueError("224 only")\n'
              'GroupMixFormer.__init__ = refuse', 'fails to build (ValueError)')}


@pytest.mark.parametrize('broken', [None, 'run', 'build'])
def test_official_columns(tmp_path, in_repo, broken):
    repo = write_stand_in(tmp_path / 'clone', 0.0)
    if broken:
        with open(f'{repo}/models/groupmixformer.py', 'a') as f:
            f.write('\n' + BROKEN[broken][0] + '\n')
    out = tmp_path / 'table.md'
    load_tool('tools/analysis_tools/benchmark.py').main(
        [CONFIG, '--official-repo', str(tmp_path / 'missing'), '--official-repo', repo,
         '--shape', '64', '64', '--mode', 'infer', '--no-flops', '--markdown', str(out), *FAST])
    row, = table(out)
    assert row['FLOPs (G)'] == '-' and float(row['Infer img/s']) > 0
    if broken:
        assert row['Official infer img/s'] == BROKEN[broken][1]
        assert row['Infer speed-up'] == '-'
    else:
        assert float(row['Official infer img/s']) > 0 and float(row['Official infer peak (MiB)']) >= 0
        assert row['Infer speed-up'].endswith('x') and float(row['Infer speed-up'][:-1]) > 0


def test_official_columns_need_classifiers(tmp_path, in_repo):
    with pytest.raises(SystemExit):
        load_tool('tools/analysis_tools/benchmark.py').main(
            [CONFIG, '--backbone-only', '--official-repo', str(tmp_path), *FAST])


def test_onnxruntime_column(tmp_path, in_repo):
    """ONNX Runtime (float32 and both int8 files) timed beside ours; a detector (RoI heads) says
    it fails to export, in each column."""
    out = tmp_path / 'onnx.md'
    load_tool('tools/analysis_tools/benchmark.py').main(
        ['mmpretrain_cfgs/groupmixformer/groupmixformer-micro_demo.py',
         'mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py', '--onnxruntime',
         '--int8', '--int8-calibrated', '--mode', 'infer', '--no-flops', '--shape', '64', '64',
         '--markdown', str(out), *FAST])
    classifier, detector = table(out)
    for kind in ('ONNX Runtime', 'ONNX Runtime int8', 'ONNX Runtime int8 calibrated'):
        assert float(classifier[f'{kind} infer img/s']) > 0
        assert detector[f'{kind} infer img/s'].startswith('fails to export')
    ratio = float(classifier['Infer img/s']) / float(classifier['ONNX Runtime infer img/s'])
    assert float(classifier['ONNX Runtime speed-up over ours'][:-1]) == pytest.approx(
        1 / ratio, rel=0.05)
    with pytest.raises(SystemExit):  # ONNX Runtime's CPU provider only
        load_tool('tools/analysis_tools/benchmark.py').main(
            [CONFIG, '--onnxruntime', '--device', 'cuda', *FAST])


def test_compiled_columns(tmp_path, in_repo):
    """``--compile BACKEND``: ours compiled, timed beside eager ours, in both modes."""
    out = tmp_path / 'compiled.md'
    load_tool('tools/analysis_tools/benchmark.py').main(
        [CONFIG, '--compile', 'eager', '--no-flops', '--shape', '64', '64', '--markdown', str(out),
         *FAST])
    row, = table(out)
    speed_up = float(row['Compiled infer img/s']) / float(row['Infer img/s'])
    assert float(row['Compiled infer speed-up over ours'][:-1]) == pytest.approx(speed_up, rel=0.05)
    assert float(row['Compiled train step (ms)']) > 0


def test_markdown_replaces_the_table_between_the_markers(tmp_path):
    tool = load_tool('tools/analysis_tools/benchmark.py')
    doc = tmp_path / 'benchmarks.md'
    doc.write_text(f'# Speed\n\nbefore\n{tool.BEGIN}\nold table\n{tool.END}\nafter\n')
    tool.write_markdown(str(doc), 'new table')
    tool.write_markdown(str(doc), 'newer table')
    assert doc.read_text() == f'# Speed\n\nbefore\n{tool.BEGIN}\nnewer table\n{tool.END}\nafter\n'
    tool.write_markdown(str(tmp_path / 'plain.md'), 'a table')  # no markers: the whole file
    assert (tmp_path / 'plain.md').read_text() == 'a table\n'
