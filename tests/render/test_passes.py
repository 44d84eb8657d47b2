"""render_mesh / render_face: pass contents against analytic values on a sphere, landmarks, gradients."""

import math

import torch

from rig.render.camera import OrthographicCamera, PerspectiveCamera, intrinsics_from_fov
from rig.render.passes import RenderConfig, landmark_visibility, render_mesh
from rig.render.primitives import uv_sphere


def _sphere_scene(size=64, r=0.1, d=0.6):
    v, f = uv_sphere(24, 48, r)
    K = intrinsics_from_fov(30.0, size, size)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    cam = PerspectiveCamera(K[None], R[None], torch.tensor([[0.0, 0.0, d]], dtype=torch.float64), size, size)
    return v, f, cam


def test_sphere_passes_normals_depth_mask_and_background():
    v, f, cam = _sphere_scene()
    regions = (v[:, 1] > 0).long()  # upper half label 1
    p = render_mesh(v, f, cam, RenderConfig(light="frontal"), vertex_regions=regions, region_names=("low", "up"))
    m = p.mask[0]
    assert torch.isinf(p.depth[0][~m]).all() and torch.isfinite(p.depth[0][m]).all()
    assert (p.normal[0][~m] == 0).all() and (p.rgb[0][~m] == 0).all()
    # normals: camera-space direction from the sphere centre (0, 0, d) to the visible point
    jj, ii = torch.meshgrid(torch.arange(64, dtype=torch.float64) + 0.5, torch.arange(64, dtype=torch.float64) + 0.5,
                            indexing="xy")
    K = cam.K[0]
    pts = torch.stack([(jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], torch.ones_like(jj)], -1) * p.depth[0][..., None]
    n_exact = pts - torch.tensor([0.0, 0.0, 0.6], dtype=torch.float64)
    n_exact = n_exact / n_exact.norm(dim=-1, keepdim=True)
    cos = (p.normal[0][m] * n_exact[m]).sum(-1)
    assert cos.min() > math.cos(math.radians(3.0))
    assert (p.normal[0][m][:, 2] < 0.2).all()  # visible side faces the camera (-z), up to the limb
    # regions: the upper half of the image shows label 'up' (image v down = world y up)
    assert (p.region[0][:28][m[:28]] == 1).all() and (p.region[0][36:][m[36:]] == 0).all()
    assert (p.region[0][~m] == -1).all()
    # frontal light: the centre is brighter than the limb
    assert p.rgb[0, 32, 32, 0] > p.rgb[0, 32, 12, 0]


def test_landmarks_project_with_the_camera_and_are_occluded_behind_the_sphere():
    v, f, cam = _sphere_scene()
    front = torch.tensor([[0.0, 0.0, 0.1], [0.05, 0.05, 0.0866], [-0.07, 0.0, 0.0714]], dtype=torch.float64)
    back = front * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    lmk = torch.cat([front, back])[None]
    p = render_mesh(v, f, cam, RenderConfig(), landmarks=lmk)
    proj = cam.project(lmk)
    assert torch.allclose(p.landmarks, proj.pixels) and torch.allclose(p.landmarks_depth, proj.depth)
    assert p.landmarks_visible[0].tolist() == [True, True, True, False, False, False]
    # outside the image: not visible
    far = torch.tensor([[[5.0, 0.0, 0.0]]], dtype=torch.float64)
    vis = landmark_visibility(cam.project(far).pixels, cam.project(far).depth, p.depth, 0.01)
    assert not vis.any()


def test_orthographic_sphere_silhouette_radius():
    v, f = uv_sphere(24, 48, 0.1)
    cam = OrthographicCamera.from_weak_perspective(torch.tensor([[6.0, 0.0, 0.0]], dtype=torch.float64), 64, 64)
    p = render_mesh(v, f, cam, RenderConfig(antialias=False))
    radius_px = 6.0 * 0.1 * 32
    assert abs(p.mask.sum().item() - math.pi * radius_px ** 2) / (math.pi * radius_px ** 2) < 0.03


def test_rgb_gradients_reach_vertices_colours_and_lighting():
    v, f, cam = _sphere_scene(size=32)
    v = v.clone().requires_grad_(True)
    colours = torch.full((v.shape[0], 3), 0.5, dtype=torch.float64, requires_grad=True)
    from rig.render.shading import light_preset

    sh = light_preset("studio").clone().requires_grad_(True)
    p = render_mesh(v, f, cam, RenderConfig(light=sh), vertex_colors=colours)
    p.rgb.sum().backward()
    assert v.grad.abs().sum() > 0 and colours.grad.abs().sum() > 0 and sh.grad.abs().sum() > 0
    # growing the sphere grows the antialiased image sum (edge gradient points outwards)
    radial = v.detach() / v.detach().norm(dim=-1, keepdim=True)
    assert (v.grad * radial).sum() > 0


def test_render_face_on_the_flame_fixture_projects_the_models_landmarks(flame_fixture_dir):
    from rig.face_model import load_face_model, params_from_flags
    from rig.render.camera import frame_head
    from rig.render.passes import render_face

    model = load_face_model(flame_fixture_dir / "generic_model.pkl", dtype=torch.float64)
    params = params_from_flags(model, yaw_deg=30.0, jaw_deg=10.0)
    cam = frame_head(model.v_template, 48, 48)
    p = render_face(model, params, cam, RenderConfig(impl="ref"))
    out = model(params)
    assert p.landmarks.shape == (1, 68, 2)
    assert torch.allclose(p.landmarks, cam.project(out.landmarks).pixels)
    assert p.mask.any() and (p.region == -1).all()  # the fixture has no region labels
    # landmarks flagged visible sit on covered pixels whose depth is within the tolerance
    vis = p.landmarks_visible[0]
    assert 10 <= vis.sum() < 68  # a 30-degree yaw hides part of the far side
    cols, rows = p.landmarks[0, :, 0].long(), p.landmarks[0, :, 1].long()
    assert ((cols >= 0) & (cols < 48) & (rows >= 0) & (rows < 48)).all()
    zbuf = p.depth[0, rows, cols]
    assert (zbuf[vis] >= p.landmarks_depth[0, vis] - 0.006).all()
    assert (zbuf[~vis] < p.landmarks_depth[0, ~vis] - 0.006).all()  # the hidden ones are behind the surface


def test_rgb_is_albedo_times_sh_shading_of_the_normal_pass():
    from rig.render.shading import light_preset, sh_shading

    v, f, cam = _sphere_scene(size=32)
    colours = torch.rand(v.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    p = render_mesh(v, f, cam, RenderConfig(light="left", antialias=False, background=(0.1, 0.2, 0.3)),
                    vertex_colors=colours)
    expect = p.albedo * sh_shading(p.normal, light_preset("left"))
    m = p.mask[0]
    assert torch.allclose(p.rgb[0][m], expect[0][m])
    assert torch.allclose(p.rgb[0][~m], torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64).expand(int((~m).sum()), 3))


def test_write_render_outputs_names_frames_and_arrays(tmp_path):
    import json

    import numpy as np

    from rig.render.images import write_render_outputs

    v, f, cam = _sphere_scene(size=16)
    v2 = torch.stack([v, v + torch.tensor([0.02, 0.0, 0.0], dtype=torch.float64)])
    p = render_mesh(v2, f, cam, RenderConfig(antialias=False))
    written = write_render_outputs(p, cam, tmp_path / "seq.png", ["rgb", "normal"], save_arrays=True)
    names = {w.name for w in written}
    for b in ("0000", "0001"):
        assert {f"seq_{b}.png", f"seq_{b}_rgb.png", f"seq_{b}_normal.png", f"seq_{b}_depth.npy",
                f"seq_{b}_mask.npy", f"seq_{b}_rgb.npy", f"seq_{b}_normal.npy"} <= names
    assert "seq.camera.json" in names and json.loads((tmp_path / "seq.camera.json").read_text())["width"] == 16
    d1 = np.load(tmp_path / "seq_0001_depth.npy")
    assert np.array_equal(np.isinf(d1), ~np.load(tmp_path / "seq_0001_mask.npy"))
    assert not np.array_equal(np.load(tmp_path / "seq_0000_mask.npy"), np.load(tmp_path / "seq_0001_mask.npy"))
