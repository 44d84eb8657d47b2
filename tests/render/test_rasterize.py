"""Visibility pass: C++ kernel vs reference, brute-force ray casting, analytic sphere, edge cases."""

import math
import warnings

import pytest
import torch

from rig.errors import InputError
from rig.render import rasterize_cpp
from rig.render.camera import PerspectiveCamera, frame_head, intrinsics_from_fov
from rig.render.primitives import uv_sphere
from rig.render.rasterize import (Fragments, RasterSettings, barycentrics_from_faces, interpolate, rasterize,
                                  rasterize_visibility)
from render_helpers import random_screen_mesh, random_world_soup, ray_cast_depth


@pytest.fixture(scope="module")
def kernel():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext = rasterize_cpp.load_kernel()
    if ext is None:
        pytest.skip("the C++ rasterizer does not build on this machine (no compiler?)")
    return ext


@pytest.mark.parametrize("perspective", [True, False])
@pytest.mark.parametrize("cull", [False, True])
def test_cpp_kernel_matches_reference_on_random_meshes(kernel, perspective, cull):
    screen, faces = random_screen_mesh(seed=7, B=2, V=300, F=250, H=48, W=61)
    faces = torch.cat([faces, faces[:20], faces[:5, [1, 2, 0]]])  # exact depth ties between ids
    ref = rasterize_visibility(screen, faces, RasterSettings(48, 61, perspective, cull, impl="ref"))
    cpp = rasterize_visibility(screen, faces, RasterSettings(48, 61, perspective, cull, impl="cpp"))
    assert (ref[0] >= 0).float().mean() > 0.8  # the test must exercise overlaps, not empty images
    assert torch.equal(ref[0], cpp[0])
    assert torch.allclose(ref[1], cpp[1], atol=1e-5, rtol=0)
    cov = ref[0] >= 0
    assert torch.equal(torch.isinf(ref[2]), ~cov) and torch.equal(torch.isinf(cpp[2]), ~cov)
    assert torch.allclose(ref[2][cov], cpp[2][cov], atol=1e-5, rtol=0)


def test_kernel_agrees_on_a_dense_mesh_with_shared_edges(kernel):
    # Pixel centres exactly on shared edges / vertices (integer + 0.5 coordinates) hit the tie rules.
    v, f = uv_sphere(20, 33, 0.1)
    cam = frame_head(v, 64, 64)
    screen = cam.project(v).screen()
    ref = rasterize_visibility(screen, f, RasterSettings(64, 64, impl="ref"))
    cpp = rasterize_visibility(screen, f, RasterSettings(64, 64, impl="cpp"))
    assert torch.equal(ref[0], cpp[0]) and torch.equal(ref[1], cpp[1]) and torch.equal(ref[2], cpp[2])
    grid = torch.tensor([[0.5, 0.5, 1.0], [8.5, 0.5, 1.0], [0.5, 8.5, 1.0], [8.5, 8.5, 1.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])
    ref = rasterize_visibility(grid[None], faces, RasterSettings(10, 10, impl="ref"))
    cpp = rasterize_visibility(grid[None], faces, RasterSettings(10, 10, impl="cpp"))
    assert torch.equal(ref[0], cpp[0])
    # The diagonal pixel centres lie on both triangles at equal depth: the smaller id wins.
    assert ref[0][0, 4, 4] == 0 and ref[0][0, 0, 0] == 0 and ref[0][0, 8, 8] == 1


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_mask_and_depth_match_brute_force_ray_cast(impl, kernel):
    verts, faces = random_world_soup(seed=3, n_tris=120)
    K = intrinsics_from_fov(40.0, 56, 48)
    cam = PerspectiveCamera(K[None], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))[None],
                            torch.tensor([[0.0, 0.0, 0.6]], dtype=torch.float64), 56, 48)
    frags = rasterize(cam.project(verts).screen(), faces, RasterSettings(48, 56, impl=impl))
    face_rc, depth_rc = ray_cast_depth(verts, faces, cam.K[0], cam.R[0], cam.t[0], 48, 56)
    mask_r, mask_c = frags.pix_to_face[0] >= 0, face_rc >= 0
    assert mask_c.float().mean() > 0.3
    assert (mask_r == mask_c).float().mean() >= 0.999
    both = mask_r & mask_c
    assert torch.allclose(frags.depth[0][both], depth_rc[both], rtol=1e-9, atol=1e-9)
    assert (frags.pix_to_face[0][both] == face_rc[both]).float().mean() >= 0.999


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_sphere_silhouette_depth_and_barycentrics(impl, kernel):
    r, d, size = 0.1, 0.5, 96
    v, f = uv_sphere(48, 96, r)
    K = intrinsics_from_fov(30.0, size, size)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    cam = PerspectiveCamera(K[None], R[None], torch.tensor([[0.0, 0.0, d]], dtype=torch.float64), size, size)
    frags = rasterize(cam.project(v).screen(), f, RasterSettings(size, size, impl=impl))
    radius_px = float(K[0, 0]) * r / math.sqrt(d * d - r * r)  # tangent cone of the sphere
    area = frags.mask.sum().item()
    assert abs(area - math.pi * radius_px ** 2) / (math.pi * radius_px ** 2) < 0.02
    # depth at each covered pixel equals the ray-sphere intersection (mesh is inscribed: slightly deeper)
    jj, ii = torch.meshgrid(torch.arange(size, dtype=torch.float64) + 0.5, torch.arange(size, dtype=torch.float64) + 0.5,
                            indexing="xy")
    x = (jj - K[0, 2]) / K[0, 0]
    y = (ii - K[1, 2]) / K[1, 1]
    # ray (x, y, 1) * z against |p - c|^2 = r^2 with c = (0, 0, d) in camera space
    a = x * x + y * y + 1.0
    disc = d * d - a * (d * d - r * r)
    z_exact = (d - torch.sqrt(disc.clamp_min(0))) / a
    inner = frags.mask[0] & (disc > 0.05 * r * r)
    assert inner.sum() > 1000
    err = (frags.depth[0][inner] - z_exact[inner])
    # The inscribed mesh lies at most r (1 - cos(alpha)) inside the sphere (alpha: the cells' angular
    # half-diagonal); along a ray that meets the surface at incidence cos = sqrt(disc) / r that is longer.
    sagitta = r * (1 - math.cos(0.5 * math.hypot(math.pi / 49, 2 * math.pi / 96)))
    cos_inc = torch.sqrt(disc[inner]) / r
    assert err.min() > -1e-9 and (err <= 1.05 * sagitta / cos_inc).all()
    c = size // 2
    assert abs(frags.depth[0, c, c].item() - (d - r)) < sagitta
    b = frags.bary[0][frags.mask[0]]
    assert torch.allclose(b.sum(-1), torch.ones_like(b[:, 0])) and b.min() >= 0


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_near_plane_degenerate_and_empty_cases(impl, kernel):
    s = RasterSettings(16, 16, impl=impl, near=0.1)
    tri = torch.tensor([[[2.0, 2.0, 1.0], [14.0, 2.0, 1.0], [2.0, 14.0, 1.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    assert rasterize(tri, faces, s).mask.sum() > 50
    crossing = tri.clone()
    crossing[0, 2, 2] = 0.05  # one vertex in front of the near plane: rejected whole
    assert rasterize(crossing, faces, s).mask.sum() == 0
    behind = tri.clone()
    behind[0, :, 2] = -1.0
    assert rasterize(behind, faces, s).mask.sum() == 0
    degenerate = torch.tensor([[[2.0, 2.0, 1.0], [8.0, 8.0, 1.0], [14.0, 14.0, 1.0]]], dtype=torch.float64)
    assert rasterize(degenerate, faces, s).mask.sum() == 0
    nan = tri.clone()
    nan[0, 1, 0] = float("nan")
    assert rasterize(nan, faces, s).mask.sum() == 0
    empty = rasterize(tri, torch.zeros(0, 3, dtype=torch.int64), s)
    assert empty.mask.sum() == 0 and torch.isinf(empty.depth).all() and (empty.bary == 0).all()
    off = tri.clone()
    off[0, :, 0] += 100.0  # entirely right of the image
    assert rasterize(off, faces, s).mask.sum() == 0
    one = rasterize(torch.tensor([[[-5.0, -5.0, 1.0], [10.0, -5.0, 1.0], [-5.0, 10.0, 1.0]]], dtype=torch.float64),
                    faces, RasterSettings(1, 1, impl=impl))
    assert one.pix_to_face.shape == (1, 1, 1) and one.pix_to_face.item() == 0


@pytest.mark.parametrize("impl", ["ref", "cpp"])
def test_backface_culling_follows_winding(impl, kernel):
    v, f = uv_sphere(12, 24, 0.1)
    cam = frame_head(v, 40, 40)
    screen = cam.project(v).screen()
    plain = rasterize(screen, f, RasterSettings(40, 40, impl=impl))
    culled = rasterize(screen, f, RasterSettings(40, 40, cull_backfaces=True, impl=impl))
    # A closed convex mesh: the visible triangles are exactly the front faces.
    assert torch.equal(plain.pix_to_face, culled.pix_to_face)
    flipped = rasterize(screen, f[:, [0, 2, 1]], RasterSettings(40, 40, cull_backfaces=True, impl=impl))
    assert flipped.mask.sum() > 0  # the inside of the far hemisphere is seen
    assert (flipped.depth[flipped.mask] > plain.depth[flipped.mask]).all()


def test_batched_images_are_independent(kernel):
    screen, faces = random_screen_mesh(seed=11, B=3, V=60, F=40, H=20, W=24)
    s = RasterSettings(20, 24, impl="auto")
    batched = rasterize(screen, faces, s)
    for b in range(3):
        single = rasterize(screen[b:b + 1], faces, s)
        assert torch.equal(batched.pix_to_face[b], single.pix_to_face[0])
        assert torch.equal(batched.depth[b], single.depth[0])


def test_differentiable_barycentrics_equal_visibility_pass_values():
    screen, faces = random_screen_mesh(seed=5, B=2, V=50, F=40, H=24, W=24)
    screen = screen.requires_grad_(True)
    frags = rasterize(screen, faces, RasterSettings(24, 24, impl="ref"))
    assert frags.bary.requires_grad
    p2f, bary, depth = rasterize_visibility(screen, faces, RasterSettings(24, 24, impl="ref"))
    assert torch.equal(frags.bary.detach(), bary) and torch.equal(frags.depth.detach(), depth)


@pytest.mark.parametrize("impl", ["ref", "cpp"])
@pytest.mark.parametrize("perspective", [True, False])
def test_interpolate_gradcheck_vertices_and_attributes(perspective, impl, kernel):
    # A 7x7 image with one triangle well inside plus a second overlapping one: fixed ids, smooth
    # dependence of barycentrics on the vertices.
    screen = torch.tensor([[[0.9, 0.8, 1.0], [6.3, 1.2, 1.4], [1.4, 6.1, 0.8],
                            [3.1, 2.9, 0.7], [6.6, 6.2, 1.9], [2.2, 6.8, 0.9]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    p2f = rasterize(screen, faces, RasterSettings(7, 7, perspective=perspective, impl="ref")).pix_to_face
    assert (p2f == 0).sum() > 3 and (p2f == 1).sum() > 3
    attrs = torch.randn(1, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def fn(sc, at):
        bary, depth = barycentrics_from_faces(sc, faces, p2f, perspective)
        frags = Fragments(p2f, bary, depth)
        out = interpolate(at, faces, frags, impl=impl)
        return out, torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))

    assert torch.autograd.gradcheck(fn, (screen.clone().requires_grad_(True), attrs.clone().requires_grad_(True)))


def test_interpolate_matches_manual_weighted_sum_and_separate_uv_faces():
    screen, faces = random_screen_mesh(seed=9, B=1, V=30, F=20, H=16, W=16)
    frags = rasterize(screen, faces, RasterSettings(16, 16, impl="ref"))
    attrs = torch.randn(30, 4, dtype=torch.float64)
    out = interpolate(attrs, faces, frags)
    i, j = torch.nonzero(frags.mask[0], as_tuple=True)[0][3], torch.nonzero(frags.mask[0], as_tuple=True)[1][3]
    fid = frags.pix_to_face[0, i, j]
    expect = (frags.bary[0, i, j, :, None] * attrs[faces[fid]]).sum(0)
    assert torch.allclose(out[0, i, j], expect)
    assert (out[0][~frags.mask[0]] == 0).all()
    # attributes indexed by their own faces (a UV seam layout): permuted storage, same result
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(1))
    inv = torch.argsort(perm)
    out2 = interpolate(attrs[perm], inv[faces], frags)
    assert torch.allclose(out, out2)


def test_auto_falls_back_to_reference_with_warning_when_build_fails(tmp_path, monkeypatch):
    from rig import _ext

    broken = tmp_path / "broken.cpp"
    broken.write_text("#error deliberately broken\n")
    monkeypatch.setattr(rasterize_cpp, "KERNEL_SOURCE", broken)
    monkeypatch.setattr(_ext, "default_cache_dir", lambda: tmp_path / "cache")
    screen, faces = random_screen_mesh(seed=1, B=1, V=20, F=10, H=12, W=12)
    with pytest.warns(RuntimeWarning, match="falling back"):
        frags = rasterize(screen, faces, RasterSettings(12, 12, impl="auto"))
    ref = rasterize(screen, faces, RasterSettings(12, 12, impl="ref"))
    assert torch.equal(frags.pix_to_face, ref.pix_to_face)
    with pytest.raises(_ext.ExtensionBuildError):
        rasterize(screen, faces, RasterSettings(12, 12, impl="cpp"))


def test_reference_chunking_merges_winners_like_one_pass():
    # Small chunks force the cross-chunk merge (depth, then face id) on overlapping triangles.
    from rig.render.rasterize_ref import rasterize_visibility_ref

    screen, faces = random_screen_mesh(seed=13, B=1, V=90, F=80, H=20, W=22)
    faces = torch.cat([faces, faces[:10]])  # exact duplicates: equal depths, smaller id must win
    one = rasterize_visibility_ref(screen, faces, 20, 22)
    chunked = rasterize_visibility_ref(screen, faces, 20, 22, max_candidates=37)
    assert torch.equal(one[0], chunked[0]) and torch.equal(one[1], chunked[1]) and torch.equal(one[2], chunked[2])
    assert not (one[0] >= 80).any()  # duplicates (ids 80..89) never beat their originals


@pytest.mark.parametrize("perspective", [True, False])
def test_cpp_analytic_backward_matches_torch_autograd_path(kernel, perspective):
    screen, faces = random_screen_mesh(seed=3, B=2, V=60, F=50, H=20, W=24)
    attrs = torch.randn(2, 60, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gd = torch.randn(2, 20, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    grads = []
    for impl in ("ref", "cpp"):
        s = screen.clone().requires_grad_(True)
        frags = rasterize(s, faces, RasterSettings(20, 24, perspective=perspective, impl=impl))
        d = torch.where(frags.mask, frags.depth, torch.zeros_like(frags.depth))
        ((interpolate(attrs, faces, frags) ** 2).sum() + (d * gd).sum()).backward()
        grads.append(s.grad)
    assert grads[0].abs().max() > 1.0
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("perspective", [True, False])
def test_cpp_backward_gradcheck(kernel, perspective):
    # no pixel centre within 1e-6 of an edge, so the ids are fixed under gradcheck's perturbations
    screen = torch.tensor([[[0.93, 0.81, 1.0], [6.31, 1.17, 1.4], [1.42, 6.13, 0.8],
                            [3.13, 2.91, 0.7], [6.62, 6.19, 1.9], [2.23, 6.77, 0.9]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    attrs = torch.randn(1, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def fn(sc):
        frags = rasterize(sc, faces, RasterSettings(7, 7, perspective=perspective, impl="cpp"))
        return interpolate(attrs, faces, frags), torch.where(frags.mask, frags.depth, torch.zeros_like(frags.depth))

    assert torch.autograd.gradcheck(fn, (screen.clone().requires_grad_(True),))


def test_float32_input_gives_the_reference_values_rounded_once(kernel):
    screen, faces = random_screen_mesh(seed=21, B=1, V=80, F=60, H=24, W=30)
    screen32 = screen.float()
    ref = rasterize_visibility(screen32, faces, RasterSettings(24, 30, impl="ref"))
    cpp = rasterize_visibility(screen32, faces, RasterSettings(24, 30, impl="cpp"))
    assert cpp[1].dtype == torch.float32 and cpp[2].dtype == torch.float32
    assert torch.equal(ref[0], cpp[0])
    assert torch.equal(ref[1].float(), cpp[1]) and torch.equal(ref[2].float(), cpp[2])


@pytest.mark.parametrize("attr_batch", [1, 2])
def test_fused_interpolate_matches_torch_values_and_gradients(kernel, attr_batch):
    screen, faces = random_screen_mesh(seed=4, B=2, V=60, F=50, H=20, W=24)
    attrs0 = torch.randn(attr_batch, 60, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    results = []
    for impl in ("ref", "cpp"):
        s, a = screen.clone().requires_grad_(True), attrs0.clone().requires_grad_(True)
        frags = rasterize(s, faces, RasterSettings(20, 24, impl=impl))
        out = interpolate(a, faces, frags, impl=impl)
        (out ** 2).sum().backward()
        results.append((out.detach(), s.grad, a.grad))
    for x, y in zip(*results):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-12)
    with pytest.raises(InputError):
        interpolate(attrs0, faces + 100, frags)


def test_cpp_kernel_runs_parallel_for_on_every_thread():
    # Without -fopenmp, ATen's at::parallel_for silently runs serially inside an extension.
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 cores")
    ext = rasterize_cpp.load_kernel()
    if ext is None:
        pytest.skip("C++ kernel not built")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert ext.parallel_threads_used(64) == 2
        torch.set_num_threads(1)
        assert ext.parallel_threads_used(64) == 1
    finally:
        torch.set_num_threads(before)
