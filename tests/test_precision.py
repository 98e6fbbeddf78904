"""Autocast on CPU runs every registered backbone: bf16 maps finite and close to float32, and
training steps under float16 and bfloat16 with finite losses and gradients on the most extreme
inputs a normalised image batch holds; FLatten's focused kernel stays finite where float16 would
overflow. (The fp16/bf16 CUDA paths, fused SDPA kernels and mmcv's DCNv3 op, need a GPU: not run
here.)"""
import pytest
import torch

from groupmix_backbones.models.flatten.common import FocusedLinearAttention
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


# the ImageNet normalisation of every config (data_preprocessor mean and std, RGB)
MEAN, STD = torch.tensor([123.675, 116.28, 103.53]), torch.tensor([58.395, 57.12, 57.375])


def saturated_images(batch, height, width, seed):
    """Normalised images whose every pixel is black or white (0 or 255 in each channel): the
    extremes, -2.12 to 2.64, that a real batch reaches, at the largest contrast."""
    generator = torch.Generator().manual_seed(seed)
    pixels = 255. * torch.randint(0, 2, (batch, 3, height, width), generator=generator)
    return (pixels - MEAN[:, None, None]) / STD[:, None, None]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
@pytest.mark.parametrize('cls,name', CLASSES, ids=IDS)
def test_autocast_training_steps_have_finite_losses_and_gradients(cls, name, dtype):
    """Three AdamW steps under autocast, float16 with a gradient scaler as AmpOptimWrapper uses
    (initial scale 2**10, so that an overflow found here is the model's, not the scale's)."""
    model = build(cls, name, drop_path_rate=0.1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cpu', init_scale=2. ** 10, enabled=dtype == torch.float16)
    for step in range(3):
        with torch.autocast('cpu', dtype=dtype):
            maps = model(saturated_images(2, 45, 61, seed=step))
        loss = sum(out.float().square().mean() for out in maps)
        assert torch.isfinite(loss), f'step {step}: loss {loss.item()}'
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        bad = [n for n, p in model.named_parameters() if p.grad is not None
               and not torch.isfinite(p.grad).all()]
        assert not bad, f'step {step}: non-finite gradients of {bad[:5]}'
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
def test_focused_linear_attention_runs_in_float32_under_autocast(dtype):
    """A learned ``focus_scale`` of -6 (softplus 2.5e-3) and tokens of 10 give ``x ** 3`` of
    6.4e10: float16 overflows (inf, then NaN after the norm); the module computes it in float32
    and matches its float32 output to the rounding of its projections' inputs."""
    torch.manual_seed(0)
    attention = FocusedLinearAttention(32, num_heads=2, pos_hw=(7, 7))
    with torch.no_grad():
        attention.focus_scale.fill_(-6.)
    q, k, v = (10 * torch.randn(2, 56, 32) for _ in range(3))
    scale = torch.nn.functional.softplus(attention.focus_scale).half()
    assert not torch.isfinite(attention._focus(q.half(), scale)).all()  # what float16 would do
    want = attention.attend(q, k, v, (7, 8))
    with torch.autocast('cpu', dtype=dtype):
        got = attention.attend(*(t.to(dtype) for t in (q, k, v)), (7, 8))
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert relative_error(got, want) < TOLERANCE
