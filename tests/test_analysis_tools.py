"""tools/analysis_tools: FLOPs count softmax attention through SDPA and list what they cannot
count."""
from conftest import load_tool


def test_get_flops_counts_sdpa_and_lists_uncounted_ops(capsys, in_repo):
    load_tool('tools/analysis_tools/get_flops.py').main(
        ['mmpretrain_cfgs/flatten/flatten-swin-tiny_8xb128_in1k.py'])
    out = capsys.readouterr().out
    assert 'Params: 29.19M (29,192,384)' in out
    # the official FLatten-Swin-T (written-out attention) counts 4,501,969,152 under the same
    # counter; our classifier adds mmpretrain's global average pooling, 768 x 7 x 7
    assert 'FLOPs: 4.50G' in out
    uncounted = next(line for line in out.splitlines() if line.startswith('Not counted'))
    assert 'aten::softplus' in uncounted and 'scaled_dot_product_attention' not in uncounted


def test_flops_equal_the_official_count(in_repo):
    import torch

    from groupmix_backbones.analysis import TensorForward, build_model, count_flops
    model, scope = build_model('mmpretrain_cfgs/flatten/flatten-swin-tiny_8xb128_in1k.py')
    flops, _ = count_flops(TensorForward(model, scope, (224, 224)), torch.randn(1, 3, 224, 224))
    assert flops == 4_501_969_152 + 768 * 7 * 7
