"""Configurations the fixture does not cover: architectures, resolutions, conditioning, truncation,
clamping, fp16 settings, the discriminator variants, and gradients for training."""

import math

import numpy as np
import pytest
import torch

from rig.stylegan2.config import (DiscriminatorConfig, EpilogueConfig, GeneratorConfig, MappingConfig,
                                  SynthesisConfig)
from rig.stylegan2.discriminator import MinibatchStdLayer
from rig.stylegan2.networks import Discriminator, Generator


def _generator(seed=0, res=16, arch="skip", c_dim=0, fp16=0, clamp=None, base=256, cmax=16, z=8, w=8):
    torch.manual_seed(seed)
    cfg = GeneratorConfig(z_dim=z, c_dim=c_dim, w_dim=w, img_resolution=res, img_channels=3,
                          mapping=MappingConfig(num_layers=2),
                          synthesis=SynthesisConfig(channel_base=base, channel_max=cmax, architecture=arch,
                                                    num_fp16_res=fp16, conv_clamp=clamp))
    g = Generator(cfg).eval()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
        g.mapping.w_avg.normal_()
    return g


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("res", [4, 8, 32])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_generator_fast_matches_reference(arch, res, c_dim):
    g = _generator(res=res, arch=arch, c_dim=c_dim)
    assert g.num_ws == 2 * int(math.log2(res)) - 2
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    c = torch.eye(3)[[0, 2, 1]] if c_dim else None
    with torch.no_grad():
        ref = g(z, c, truncation_psi=0.6, noise_mode="const", impl="ref")
        ref_unfused = g(z, c, truncation_psi=0.6, noise_mode="const", impl="ref", fused_modconv=False)
        fast = g(z, c, truncation_psi=0.6, noise_mode="const", impl="fast")
        fast1 = g(z[:1], c[:1] if c is not None else None, truncation_psi=0.6, noise_mode="const", impl="fast")
    assert ref.shape == (3, 3, res, res)
    assert (ref - ref_unfused).abs().max() <= 1e-4
    assert (ref - fast).abs().max() <= 1e-4
    assert (ref[:1] - fast1).abs().max() <= 1e-4
    names = set(g.state_dict())
    assert ("synthesis.b8.skip.weight" in names) == (arch == "resnet" and res >= 8)
    assert ("synthesis.b4.torgb.weight" in names) == (arch == "skip" or res == 4)
    assert ("mapping.embed.weight" in names) == (c_dim > 0)


def test_conditioning_changes_the_image():
    g = _generator(c_dim=3)
    z = torch.randn(1, 8)
    with torch.no_grad():
        a = g(z, torch.tensor([[1.0, 0, 0]]), noise_mode="none")
        b = g(z, torch.tensor([[0, 1.0, 0]]), noise_mode="none")
    assert (a - b).abs().max() > 1e-3


def test_truncation_and_cutoff():
    g = _generator(res=16)
    z = torch.randn(2, 8)
    with torch.no_grad():
        full = g.mapping(z, None)
        zero = g.mapping(z, None, truncation_psi=0.0)
        cut = g.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(zero, g.mapping.w_avg.expand_as(zero))
    assert torch.equal(cut[:, 3:], full[:, 3:])
    assert torch.allclose(cut[:, :3], g.mapping.w_avg + 0.5 * (full[:, :3] - g.mapping.w_avg), atol=1e-6)


def test_conv_clamp_bounds_every_layer_output():
    g = _generator(res=16, clamp=0.05)
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for n, m in g.named_modules()
             if type(m).__name__ in ("SynthesisLayer", "ToRGBLayer")]
    with torch.no_grad():
        for impl in ("ref", "fast"):
            g(torch.randn(2, 8), None, impl=impl)
    for h in hooks:
        h.remove()
    assert len(outs) == 2 * (5 + 3)  # b4, b8, b16: 5 conv layers + 3 toRGB per pass
    assert max(float(o.abs().max()) for o in outs) <= 0.05 + 1e-7


def test_fp16_blocks_run_in_float32_off_cuda():
    """On CPU, num_fp16_res only names blocks; numerics equal the float32 network (NVIDIA's force_fp32)."""
    a = _generator(res=16, fp16=2, clamp=0.5)
    b = _generator(res=16, fp16=0, clamp=0.5)
    b.load_state_dict(a.state_dict())
    assert a.synthesis.b16.use_fp16 and a.synthesis.b8.use_fp16 and not a.synthesis.b4.use_fp16
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(a(z, None, noise_mode="const", impl="ref"), b(z, None, noise_mode="const", impl="ref"))


def test_known_weights_give_the_analytic_image():
    """4 px generator with delta kernels and unit styles: image = torgb(sqrt2 * lrelu(const + b)) in closed form."""
    g = _generator(res=4, base=16, cmax=4)
    blk = g.synthesis.b4
    rng = np.random.default_rng(5)
    const = rng.normal(size=(4, 4, 4))
    bias = rng.normal(size=4) * 0.1
    w_rgb = rng.normal(size=(3, 4))
    b_rgb = rng.normal(size=3)
    with torch.no_grad():
        blk.const.copy_(torch.from_numpy(const))
        delta = torch.zeros(4, 4, 3, 3)
        delta[range(4), range(4), 1, 1] = 2.0  # demodulation rescales it back to 1
        blk.conv1.weight.copy_(delta)
        blk.conv1.affine.weight.zero_()
        blk.conv1.affine.bias.fill_(1.0)
        blk.conv1.noise_strength.zero_()
        blk.conv1.bias.copy_(torch.from_numpy(bias))
        blk.torgb.affine.weight.zero_()
        blk.torgb.affine.bias.fill_(1.0)
        blk.torgb.weight.copy_(torch.from_numpy(w_rgb)[:, :, None, None])
        blk.torgb.bias.copy_(torch.from_numpy(b_rgb))
    x = const + bias[:, None, None]
    x = np.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
    expect = np.einsum("oc,chw->ohw", w_rgb, x) / math.sqrt(4) + b_rgb[:, None, None]
    for impl in ("ref", "fast"):
        with torch.no_grad():
            img = g.synthesis(torch.randn(1, g.num_ws, 8), noise_mode="random", impl=impl)
        np.testing.assert_allclose(img[0].numpy(), expect, rtol=1e-5, atol=1e-5)


def test_minibatch_std_matches_formula():
    x = torch.randn(8, 6, 3, 3)
    out = MinibatchStdLayer(group_size=4, num_channels=2)(x)
    xn = x.numpy().reshape(4, 2, 2, 3, 3, 3)  # (G, n, F, c, H, W): sample i is in group i % 2
    sd = np.sqrt(xn.var(axis=0) + 1e-8).mean(axis=(2, 3, 4))  # (n, F)
    for i in range(8):
        np.testing.assert_allclose(out[i, 6:].numpy(), np.broadcast_to(sd[i % 2][:, None, None], (2, 3, 3)),
                                   rtol=1e-5)
    assert torch.equal(out[:, :6], x)


@pytest.mark.parametrize("arch", ["resnet", "skip", "orig"])
@pytest.mark.parametrize("c_dim", [0, 2])
def test_discriminator_variants_fast_matches_reference(arch, c_dim):
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(c_dim=c_dim, img_resolution=16, img_channels=3, architecture=arch, channel_base=128,
                              channel_max=16, epilogue=EpilogueConfig(mbstd_group_size=2),
                              mapping=MappingConfig(num_layers=2))
    d = Discriminator(cfg).eval()
    img = torch.randn(4, 3, 16, 16)
    c = torch.eye(2)[[0, 1, 1, 0]] if c_dim else None
    with torch.no_grad():
        ref = d(img, c, impl="ref")
        fast = d(img, c, impl="fast")
    assert ref.shape == (4, 1)
    assert (ref - fast).abs().max() <= 1e-4
    assert ("mapping.fc0.weight" in d.state_dict()) == (c_dim > 0)
    assert ("b16.skip.weight" in d.state_dict()) == (arch == "resnet")


def test_networks_train_gradients_reach_every_parameter():
    g = _generator(res=8, arch="resnet").train()
    d = Discriminator(DiscriminatorConfig(img_resolution=8, channel_base=64, channel_max=16)).train()
    w_avg0 = g.mapping.w_avg.clone()
    img = g(torch.randn(4, 8), None)
    loss = torch.nn.functional.softplus(-d(img, None)).mean()
    loss.backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            if not name.endswith("noise_strength"):
                assert p.grad.abs().max() > 0, name
    assert not torch.equal(g.mapping.w_avg, w_avg0)  # training mode tracks w_avg
