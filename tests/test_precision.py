"""bf16 autocast on CPU runs every registered backbone: finite maps close to float32, and a
training step with finite gradients. (The fp16/bf16 CUDA paths, fused SDPA kernels and mmcv's
DCNv3 op, need a GPU: not run here.)"""
import pytest
import torch

from groupmix_backbones.registry import BACKBONES
from test_contract import build

CLASSES = [(cls, next(iter(cls.arch_zoo))) for cls in BACKBONES]
IDS = [cls.__name__ for cls, _ in CLASSES]
# bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 2e-3 per op); a few blocks of matmuls,
# norms and softmaxes compound it to about 1e-2 relative (measured 0.7-1.4e-2 at 45x61)
TOLERANCE = 5e-2


def relative_error(got, want):
    return ((got.float() - want).norm() / want.norm()).item()


@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_bf16_autocast_inference_is_close_to_float32(cls, name):
    model = build(cls, name).eval()
    x = torch.randn(2, 3, 45, 61)
    with torch.no_grad():
        want = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            got = model(x)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and torch.isfinite(g).all()
        assert relative_error(g, w) < TOLERANCE, f'map {i}: {relative_error(g, w):.3g}'


@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_bf16_autocast_training_step_has_finite_gradients(cls, name):
    model = build(cls, name, drop_path_rate=0.1).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = sum(out.float().mean() for out in model(torch.randn(2, 3, 33, 47)))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
