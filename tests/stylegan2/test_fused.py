"""The fused C++ kernel against its PyTorch reference, and the warn-and-fall-back path when it cannot build."""

import numpy as np
import pytest
import torch

from rig.stylegan2.ops import fused
from rig.stylegan2.ops.fused import fir_epilogue, fir_epilogue_ref

from . import naive


@pytest.fixture(scope="module")
def ext():
    module = fused.fused_extension()
    if module is None:
        pytest.skip("fused extension could not be built here (the fallback is tested separately)")
    return module


@pytest.mark.parametrize("up,down,pad", [(1, 1, (0, 0, 0, 0)), (1, 1, (1, 2, 2, 1)), (2, 1, (2, 1, 2, 1)),
                                         (1, 2, (1, 1, 1, 1)), (2, 2, (0, -1, 1, 0)), (3, 1, (1, 1, 2, 0))])
@pytest.mark.parametrize("batch,noise_batch", [(1, 1), (3, 1), (3, 3)])
def test_kernel_matches_reference_and_naive_loop(ext, up, down, pad, batch, noise_batch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 5, 7, 6, generator=g)
    fy, fx = torch.rand(4, generator=g), torch.rand(3, generator=g) - 0.3
    out_shape = fir_epilogue_ref(x, fy, fx, up, down, pad).shape
    kw = dict(scale=torch.rand(batch, 5, generator=g), noise=torch.randn(noise_batch, *out_shape[2:], generator=g),
              bias=torch.randn(5, generator=g), act="lrelu", alpha=0.1, gain=1.3, clamp=0.8)
    got = fir_epilogue(x, fy, fx, up, down, pad, **kw)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.shape == out_shape
    ref = fir_epilogue_ref(x, fy, fx, up, down, pad, **kw)
    assert (got - ref).abs().max() < 1e-5
    # the pure FIR part against the brute-force loop (correlation taps -> convolution with flipped filter)
    plain = fir_epilogue(x, fy, fx, up, down, pad)
    loop = naive.upfirdn2d(x.double().numpy(), np.outer(fy, fx), up=up, down=down, pad=pad, flip_filter=True)
    np.testing.assert_allclose(plain.numpy(), loop, rtol=1e-5, atol=1e-5)


def test_kernel_accepts_nchw_and_bf16(ext):
    x = torch.randn(2, 8, 9, 9)
    one = torch.ones(1)
    a = fir_epilogue(x, one, one, bias=torch.ones(8), act="lrelu")
    b = fir_epilogue(x.contiguous(memory_format=torch.channels_last), one, one, bias=torch.ones(8), act="lrelu")
    assert torch.equal(a, b)
    c = fir_epilogue(x.bfloat16(), one, one, bias=torch.ones(8), act="lrelu")
    assert c.dtype == torch.float32 and (c - a).abs().max() < 0.05


def test_build_failure_warns_and_falls_back(tmp_path, monkeypatch):
    broken = tmp_path / "broken_kernel.cpp"
    broken.write_text("#include <rig_header_that_does_not_exist.h>\n")
    with pytest.warns(RuntimeWarning, match="falling back"):
        assert fused.fused_extension(str(broken), str(tmp_path / "cache")) is None
    # With no extension every fast-path op uses the reference composition and gives the same numbers.
    monkeypatch.setattr(fused, "fused_extension", lambda *a, **k: None)
    from rig.stylegan2.config import GeneratorConfig, MappingConfig, SynthesisConfig
    from rig.stylegan2.networks import Generator

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, mapping=MappingConfig(num_layers=2),
                                  synthesis=SynthesisConfig(channel_base=128, channel_max=8))).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert (g(z, None, noise_mode="const", impl="fast") - g(z, None, noise_mode="const", impl="ref")).abs().max() < 1e-4
