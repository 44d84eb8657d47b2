"""Shading: SH lighting against the addition theorem, gradcheck, normals, texture sampling."""

import math

import pytest
import torch

from rig.errors import InputError
from rig.render.primitives import uv_sphere
from rig.render.shading import (light_preset, load_sh, sample_texture, sh_basis, sh_from_lights, sh_shading,
                                shade_lambert, vertex_normals)


def _unit(n, seed):
    v = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return v / v.norm(dim=-1, keepdim=True)


def test_sh_basis_is_orthonormal_on_the_sphere():
    # Monte-Carlo-free check: a fine Fibonacci sphere quadrature of Y_i Y_j equals the identity.
    n = 20000
    k = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * k / n
    phi = math.pi * (1 + 5 ** 0.5) * k
    r = torch.sqrt(1 - z * z)
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=-1)
    Y = sh_basis(dirs)
    gram = Y.T @ Y * (4 * math.pi / n)
    assert torch.allclose(gram, torch.eye(9, dtype=torch.float64), atol=2e-3)


def test_directional_light_follows_the_lambert_sh_kernel():
    # Addition theorem: sum_m Y_lm(d) Y_lm(n) = (2l+1)/(4 pi) P_l(n.d), so a light of irradiance I
    # gives I * (1/4 + c/2 + 5/16 * P2(c)), the 2nd-order approximation of I * max(0, c).
    d = torch.tensor([0.3, -0.5, -0.8], dtype=torch.float64)
    d = d / d.norm()
    sh = sh_from_lights(ambient=(0, 0, 0), lights=[(d, (2.0, 1.0, 0.5))])
    n = _unit(50, 1)
    c = n @ d
    expect = 0.25 + 0.5 * c + 5.0 / 16.0 * (3 * c * c - 1) / 2
    got = sh_shading(n[None], sh)[0]
    assert torch.allclose(got, expect[:, None] * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64), atol=1e-12)
    # the approximation is close to the clamped cosine where it matters (facing the light)
    assert abs(sh_shading(d[None, None], sh)[0, 0, 0].item() - 2.0) < 0.15
    amb = sh_from_lights(ambient=(0.3, 0.5, 0.7))
    assert torch.allclose(sh_shading(n[None], amb)[0], torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64).expand(50, 3))


def test_light_presets_brighten_their_side():
    left, right, top = light_preset("left"), light_preset("right"), light_preset("top")
    facing_left = torch.tensor([[[-1.0, 0.0, 0.0]]], dtype=torch.float64)  # camera space: image left
    facing_up = torch.tensor([[[0.0, -1.0, 0.0]]], dtype=torch.float64)  # y down: -y is up
    assert sh_shading(facing_left, left)[0, 0, 0] > 2 * sh_shading(facing_left, right)[0, 0, 0]
    assert sh_shading(facing_up, top)[0, 0, 0] > sh_shading(-facing_up, top)[0, 0, 0] + 0.5
    for name in ("frontal", "studio", "ambient"):
        assert light_preset(name).shape == (9, 3)
    with pytest.raises(InputError):
        light_preset("disco")


def test_shading_gradcheck():
    n = _unit(6, 2).reshape(1, 2, 3, 3).requires_grad_(True)
    albedo = torch.rand(1, 2, 3, 3, dtype=torch.float64).requires_grad_(True)
    sh = torch.randn(1, 9, 3, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(shade_lambert, (albedo, n, sh))


def test_vertex_normals_of_a_sphere_are_radial():
    v, f = uv_sphere(20, 40, 0.3, center=(1.0, 2.0, 3.0))
    n = vertex_normals(v, f)[0]
    radial = (v - torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)) / 0.3
    assert (n * radial).sum(-1).min() > 0.999
    assert torch.allclose(n.norm(dim=-1), torch.ones(len(v), dtype=torch.float64))


def test_sample_texture_bilinear_values_and_gradcheck():
    tex = torch.arange(4 * 6 * 2, dtype=torch.float64).reshape(4, 6, 2)
    # texel centre of row i (from the top), column j is at u = (j + .5)/6, v = 1 - (i + .5)/4
    uv = torch.tensor([[[[2.5 / 6, 1 - 1.5 / 4], [3.0 / 6, 1 - 1.5 / 4], [3.0 / 6, 1 - 2.0 / 4]]]], dtype=torch.float64)
    out = sample_texture(tex, uv)[0, 0]
    assert torch.allclose(out[0], tex[1, 2])
    assert torch.allclose(out[1], (tex[1, 2] + tex[1, 3]) / 2)
    assert torch.allclose(out[2], (tex[1, 2] + tex[1, 3] + tex[2, 2] + tex[2, 3]) / 4)
    t = torch.rand(1, 5, 4, 3, dtype=torch.float64).requires_grad_(True)
    q = (torch.rand(1, 2, 2, 2, dtype=torch.float64) * 0.6 + 0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(sample_texture, (t, q))


def test_load_sh_reads_27_numbers_and_rejects_others(tmp_path):
    import numpy as np

    sh = light_preset("studio").numpy()
    np.save(tmp_path / "l.npy", sh)
    assert torch.allclose(load_sh(tmp_path / "l.npy"), torch.as_tensor(sh))
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="bad.txt"):
        load_sh(tmp_path / "bad.txt")


def test_point_list_shading_matches_image_shading_per_batch():
    from rig.render.shading import sh_shading_points

    n = _unit(12, 4).reshape(2, 2, 3, 3)
    sh = torch.randn(2, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    full = sh_shading(n, sh)
    flat = sh_shading_points(n.reshape(-1, 3), sh, torch.arange(2).repeat_interleave(6))
    assert torch.allclose(full.reshape(-1, 3), flat)
    one = sh_shading_points(n.reshape(-1, 3), sh[0], torch.zeros(12, dtype=torch.int64))
    assert torch.allclose(sh_shading(n, sh[:1]).reshape(-1, 3), one)
