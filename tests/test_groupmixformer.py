"""GroupMixFormer specifics; the options every backbone shares are in test_contract.py."""
import pytest
import torch

from groupmix_backbones import GroupMixFormer

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
