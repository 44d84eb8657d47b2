"""Each op's reference path against a brute-force loop or the formula, and its fast path against the reference."""

import math

import numpy as np
import pytest
import torch

from rig.stylegan2.ops import (bias_act, bias_act_ref, conv2d_resample, modulated_conv2d, modulated_conv2d_ref,
                               setup_filter, upfirdn2d, upfirdn2d_ref)
from rig.stylegan2.ops.modconv import modulated_conv2d_fast

from . import naive


def _rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("act,alpha,gain,clamp", [
    ("linear", None, None, None), ("lrelu", None, None, None), ("lrelu", 0.1, 3.0, 0.5),
    ("relu", None, 0.5, None), ("tanh", None, None, 0.3), ("swish", None, None, None)])
@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_bias_act_matches_formula(act, alpha, gain, clamp, impl):
    r = _rng(0)
    x = r.normal(size=(2, 5, 3, 4)).astype(np.float32)
    b = r.normal(size=5).astype(np.float32)
    y = x.astype(np.float64) + b[None, :, None, None]
    a = {"lrelu": 0.2}.get(act, 0.0) if alpha is None else alpha
    y = {"linear": y, "lrelu": np.where(y >= 0, y, a * y), "relu": np.maximum(y, 0), "tanh": np.tanh(y),
         "swish": y / (1 + np.exp(-y))}[act]
    g = {"lrelu": math.sqrt(2), "relu": math.sqrt(2), "swish": math.sqrt(2)}.get(act, 1.0) if gain is None else gain
    y = y * g
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    out = bias_act(torch.from_numpy(x), torch.from_numpy(b), act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)
    np.testing.assert_allclose(out.numpy(), y, rtol=1e-6, atol=1e-6)


def test_bias_act_fast_does_not_modify_input():
    x = torch.randn(2, 3, 4, 4)
    x0 = x.clone()
    bias_act(x, torch.zeros(3), act="lrelu", clamp=0.1, impl="fast")
    assert torch.equal(x, x0)


@pytest.mark.parametrize("up,down,pad", [
    (1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 1, (1, 1, 1, 1)),
    (2, 2, (0, -1, 1, 0)), (3, 1, (2, 2, 2, 2)), (1, 3, (-1, 2, 0, 0))])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_naive_loop(up, down, pad, flip_filter):
    r = _rng(1)
    x = r.normal(size=(2, 3, 6, 5))
    f = r.normal(size=(4, 3))  # non-symmetric, non-separable: catches flips and axis swaps
    expect = naive.upfirdn2d(x, f, up=up, down=down, pad=pad, gain=1.7, flip_filter=flip_filter)
    got = upfirdn2d_ref(torch.from_numpy(x).float(), torch.from_numpy(f).float(), up=up, down=down, padding=pad,
                        gain=1.7, flip_filter=flip_filter)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-5, atol=1e-5)
    # Separable rank-1 filter through the fast (polyphase, two 1-D passes) path.
    fs = np.outer(r.normal(size=4), r.normal(size=3))
    expect = naive.upfirdn2d(x, fs, up=up, down=down, pad=pad, gain=1.7, flip_filter=flip_filter)
    got = upfirdn2d(torch.from_numpy(x).float(), torch.from_numpy(fs).float(), up=up, down=down, padding=pad,
                    gain=1.7, flip_filter=flip_filter, impl="fast")
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-5, atol=1e-5)


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-7)
    assert setup_filter([1, 2, 3, 4, 4, 3, 2, 1]).ndim == 1  # >= 8 taps stay separable


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1)])
def test_conv2d_resample_matches_brute_force(up, down, k):
    r = _rng(2)
    x = r.normal(size=(2, 3, 8, 8))
    w = r.normal(size=(4, 3, k, k))
    f = setup_filter([1, 3, 3, 1]).double().numpy()
    flip_weight = up == 1
    got = conv2d_resample(torch.from_numpy(x).float(), torch.from_numpy(w).float(), f=torch.from_numpy(f).float(),
                          up=up, down=down, padding=k // 2, flip_weight=flip_weight)
    expect = naive.modulated_conv(x, w, np.ones((2, 3)), demodulate=False, up=up, down=down, f=f)
    assert got.shape == expect.shape == (2, 4, 8 * up // down, 8 * up // down)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("up,down,demod,k", [(1, 1, True, 3), (2, 1, True, 3), (1, 2, True, 3),
                                             (1, 1, False, 1), (1, 1, False, 3)])
@pytest.mark.parametrize("batch", [1, 3])
def test_modulated_conv2d_matches_brute_force(up, down, demod, k, batch):
    r = _rng(3)
    x = r.normal(size=(batch, 5, 8, 8))
    w = r.normal(size=(6, 5, k, k))
    s = r.normal(size=(batch, 5)) + 1.0
    f = setup_filter([1, 3, 3, 1]).double().numpy()
    expect = naive.modulated_conv(x, w, s, demodulate=demod, up=up, down=down, f=f)
    args = (torch.from_numpy(x).float(), torch.from_numpy(w).float(), torch.from_numpy(s).float())
    kw = dict(up=up, down=down, padding=k // 2, resample_filter=torch.from_numpy(f).float(), demodulate=demod,
              flip_weight=up == 1)
    for fused in (True, False):
        got = modulated_conv2d_ref(*args, fused_modconv=fused, **kw)
        np.testing.assert_allclose(got.numpy(), expect, rtol=1e-4, atol=1e-4)
    got = modulated_conv2d(*args, impl="fast", **kw)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch,up", [(1, 1), (2, 1), (1, 2), (3, 2)])
def test_modconv_fast_fuses_noise_bias_activation_and_clamp(batch, up):
    r = _rng(4)
    x, w, s = (torch.from_numpy(r.normal(size=sh)).float() for sh in [(batch, 4, 6, 6), (5, 4, 3, 3), (batch, 4)])
    noise = torch.from_numpy(r.normal(size=(6 * up, 6 * up))).float()
    bias = torch.from_numpy(r.normal(size=5)).float()
    f = setup_filter([1, 3, 3, 1])
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f, flip_weight=up == 1)
    ref = modulated_conv2d_ref(x, w, s, **kw)
    ref = bias_act_ref(ref, bias, act="lrelu", gain=math.sqrt(2) * 0.7, clamp=0.9)
    fast = modulated_conv2d_fast(x, w, s, bias=bias, act="lrelu", gain=math.sqrt(2) * 0.7, clamp=0.9, **kw)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max() < 1e-5


def _grad_inputs():
    torch.manual_seed(0)
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    s = (torch.randn(1, 2, dtype=torch.float64) + 1).requires_grad_(True)
    return f, x, w, s


def test_modulated_conv_gradients_match_finite_differences():
    f, x, w, s = _grad_inputs()

    def modconv(x, w, s, fused):
        return modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=fused)

    assert torch.autograd.gradcheck(lambda x, w, s: modconv(x, w, s, False), (x, w, s))  # the training form
    upstream = torch.randn_like(modconv(x, w, s, False))
    g_unfused = torch.autograd.grad((modconv(x, w, s, False) * upstream).sum(), (x, w, s))
    g_fused = torch.autograd.grad((modconv(x, w, s, True) * upstream).sum(), (x, w, s))
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g_unfused, g_fused))


def test_upfirdn2d_and_bias_act_gradients_match_finite_differences():
    f, x, _, _ = _grad_inputs()
    assert torch.autograd.gradcheck(lambda x: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4), (x,))
    assert torch.autograd.gradcheck(lambda x: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl="fast"), (x,))
    y = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y, b: bias_act(y, b, act="lrelu", clamp=0.8), (y, b))
