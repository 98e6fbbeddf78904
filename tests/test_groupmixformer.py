"""GroupMixFormer specifics; the options every backbone shares are in test_contract.py."""
import pytest
import torch

from groupmix_backbones import GroupMixFormer
from groupmix_backbones.models.groupmixformer import GroupMixAttention
from groupmix_backbones.models.layers import recording_attention
from groupmix_backbones.visualization.attention import attention_row, record_attention

TINY = dict(embed_dims=[40, 40, 80, 80], depths=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2])

# official classifiers (AILab-CVC/GroupMixFormer, 1000 classes): backbone + norm4 + head
OFFICIAL_PARAMS = dict(mini=5_733_120, tiny=10_949_152, small=22_421_320, base=45_827_272,
                       large=71_833_648)


@pytest.mark.parametrize('arch', list(OFFICIAL_PARAMS))
def test_param_counts_of_released_classifiers(arch):
    with torch.device('meta'):
        model = GroupMixFormer(arch=arch, final_norm=True)
    dim = model.embed_dims[-1]
    assert sum(p.numel() for p in model.parameters()) + dim * 1000 + 1000 == OFFICIAL_PARAMS[arch]


def test_full_depth_at_an_odd_size():
    model = GroupMixFormer(arch='mini').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 37, 53))
    assert [tuple(o.shape[1:]) for o in outs] == [(40, 10, 14), (80, 5, 7), (160, 3, 4),
                                                  (160, 2, 2)]


def test_channels_must_split_into_five_groups():
    with pytest.raises(ValueError, match='divisible by 5'):
        GroupMixFormer(arch=dict(TINY, embed_dims=[48, 48, 80, 80]))


def test_frozen_parameters_do_not_change_in_a_step():
    model = GroupMixFormer(arch=TINY, frozen_stages=2, norm_eval=True).train()
    before = [p.clone() for p in model.stages[1].parameters()]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.stages[1].parameters()))


def test_final_norm_applies_to_last_output_only():
    model = GroupMixFormer(arch=TINY, final_norm=True).eval()
    plain = GroupMixFormer(arch=TINY).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), plain(x)
    torch.testing.assert_close(a[2], b[2])
    torch.testing.assert_close(a[3], model.out_norm(b[3]))


def test_recorded_weights_are_the_efficient_attention():
    """While recording, the probe gets the N x N weights ``scale q^T softmax_N(k)``: applied to v
    they give the attention part of attend() (its position term zeroed), on whole-map cells; the
    output is the same either way, and the probe is not called when not recording."""
    torch.manual_seed(0)
    attn = GroupMixAttention(40, num_heads=8).eval()
    with torch.no_grad():
        for param in attn.parameters():
            param.normal_(0, 0.2)
        for conv in attn.crpe.convs:
            conv.weight.zero_()
            conv.bias.zero_()
    hw, heads = (5, 7), attn.num_heads
    q, k, v = torch.randn(3, 2, heads, 4, 35).unbind(0)  # (B, heads, Ch, N)
    calls = []
    handle = attn.attn_weights.register_forward_hook(lambda *args: calls.append(args))
    with torch.no_grad():
        fused = attn.attend(q, k, v, hw)
        attn(torch.randn(2, 35, 40), hw)
    handle.remove()
    assert not calls
    record = record_attention(attn, lambda: attn.attend(q, k, v, hw), {'': attn.attn_weights})['']
    weights = record['weights']
    assert weights.shape == (2, heads, 35, 35)
    torch.testing.assert_close((weights @ v.transpose(-2, -1)).transpose(-2, -1), fused,
                               rtol=0, atol=1e-6)
    assert torch.equal(record['queries'], torch.arange(35)) and record['hw_shape'] == hw
    row = attention_row(record, (3, 2)).weights  # (heads, 5, 7)
    assert torch.equal(row.flatten(1), weights[0, :, 3 * 7 + 2])
    x = torch.randn(2, 35, 40)
    with torch.no_grad():
        plain = attn(x, hw)
    recorded = record_attention(attn, lambda: attn(x, hw), {'': attn.attn_weights})['']
    assert recorded['weights'].shape == (2, heads, 35, 35)
    with torch.no_grad(), recording_attention(attn):  # the output keeps its linear form
        torch.testing.assert_close(attn(x, hw), plain, rtol=0, atol=0)



def test_output_norms_of_any_norm_cfg_norm_the_channels():
    """Output norms built from ``norm_cfg`` (BN, GN) norm each returned map's channels."""
    model = GroupMixFormer(arch=TINY, norm_outputs=True,
                           norm_cfg=dict(type='GN', num_groups=4)).eval()
    plain = GroupMixFormer(arch=TINY, norm_cfg=dict(type='GN', num_groups=4)).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(model(x), plain(x), strict=True)):
            torch.testing.assert_close(a, model.output_norms[str(i)](b))
