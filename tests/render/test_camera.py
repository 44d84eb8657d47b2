"""Cameras: projection formulas, framing a y-up head, look-at, JSON round trip, weak perspective."""

import math

import pytest
import torch

from rig.errors import InputError, ShapeError
from rig.render.camera import (OrthographicCamera, PerspectiveCamera, frame_head, intrinsics_from_fov,
                               look_at)
from rig.render.primitives import uv_sphere


def _random_camera(seed=0, B=2):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, 3, 3, generator=g, dtype=torch.float64)
    R = torch.linalg.qr(q).Q
    R = R * torch.sign(torch.linalg.det(R))[:, None, None]
    K = torch.tensor([[[500.0, 0.3, 200.0], [0.0, 480.0, 150.0], [0.0, 0.0, 1.0]]], dtype=torch.float64).expand(B, 3, 3)
    t = torch.tensor([[0.1, -0.2, 3.0]], dtype=torch.float64).expand(B, 3)
    return PerspectiveCamera(K.clone(), R, t.clone(), 400, 300)


def test_projection_is_K_times_camera_point_over_depth():
    cam = _random_camera()
    pts = torch.randn(2, 10, 3, dtype=torch.float64) * 0.2
    proj = cam.project(pts)
    for b in range(2):
        pc = pts[b] @ cam.R[b].T + cam.t[b]
        h = pc @ cam.K[b].T
        assert torch.allclose(proj.pixels[b], h[:, :2] / h[:, 2:], atol=1e-10)
        assert torch.allclose(proj.depth[b], pc[:, 2])
    assert torch.allclose(cam.center, -(cam.R.transpose(1, 2) @ cam.t[..., None])[..., 0])
    # the camera centre projects to depth zero
    assert torch.allclose(cam.world_to_camera(cam.center[:, None, :]), torch.zeros(2, 1, 3, dtype=torch.float64), atol=1e-12)


def test_fov_intrinsics_put_the_optical_axis_at_the_image_centre():
    K = intrinsics_from_fov(60.0, 64, 48)
    assert K[0, 2] == 32 and K[1, 2] == 24
    assert math.isclose(2 * math.degrees(math.atan(24 / K[1, 1].item())), 60.0)
    with pytest.raises(InputError):
        intrinsics_from_fov(0.0, 10, 10)


def test_frame_head_fits_a_y_up_face_and_flips_y():
    v, _ = uv_sphere(10, 20, 0.1, center=(0.02, 1.5, -0.03))
    cam = frame_head(v, 128, 96, fov_deg=15.0)
    proj = cam.project(v)
    px = proj.pixels[0]
    assert (px[:, 0] > 0).all() and (px[:, 0] < 128).all() and (px[:, 1] > 0).all() and (px[:, 1] < 96).all()
    # the bounding box centre is on the optical axis
    centre = cam.project(torch.tensor([[0.02, 1.5, -0.03]], dtype=torch.float64)).pixels[0, 0]
    assert torch.allclose(centre, torch.tensor([64.0, 48.0], dtype=torch.float64), atol=1e-9)
    # world up is image up (smaller v), the subject's left (+x) is image right, +z is nearer
    top = v[v[:, 1].argmax()]
    left = v[v[:, 0].argmax()]
    front = v[v[:, 2].argmax()]
    assert cam.project(top[None]).pixels[0, 0, 1] < centre[1]
    assert cam.project(left[None]).pixels[0, 0, 0] > centre[0]
    assert cam.project(front[None]).depth[0, 0] == proj.depth[0].min()
    assert torch.allclose(torch.linalg.det(cam.R), torch.ones(1, dtype=torch.float64))
    # the sphere's silhouette radius fits within the shorter side with the margin
    span = (px.max(0).values - px.min(0).values).max()
    assert 0.6 * 96 < span < 96


def test_look_at_matches_frame_head_rotation_and_is_orthonormal():
    R, t = look_at(torch.tensor([0.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 0.0]))
    assert torch.allclose(R[0], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)))
    assert torch.allclose(t[0], torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64))
    R, t = look_at(torch.tensor([[1.0, 0.5, 1.0]]), torch.tensor([[0.1, 0.0, 0.0]]))
    pt = torch.tensor([[0.1, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(R[0] @ R[0].T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    cam = PerspectiveCamera(intrinsics_from_fov(30, 32, 32)[None], R, t, 32, 32)
    assert torch.allclose(cam.project(pt).pixels,
                          torch.tensor([[[16.0, 16.0]]], dtype=torch.float64), atol=1e-9)
    with pytest.raises(InputError):
        look_at(torch.tensor([0.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 0.0]))


def test_camera_json_round_trip(tmp_path):
    cam = _random_camera(B=1)
    path = tmp_path / "cam.json"
    cam.save_json(path)
    back = PerspectiveCamera.load_json(path)
    assert back.width == 400 and back.height == 300
    for a, b in ((cam.K, back.K), (cam.R, back.R), (cam.t, back.t)):
        assert torch.equal(a, b)
    (tmp_path / "bad.json").write_text('{"K": [[1, 0], [0, 1]], "R": 3}')
    with pytest.raises(InputError, match="bad.json"):
        PerspectiveCamera.load_json(tmp_path / "bad.json")
    with pytest.raises(ShapeError):
        PerspectiveCamera(torch.eye(3), torch.eye(3)[None], torch.zeros(1, 3), 4, 4)


def test_weak_perspective_matches_deca_orthographic_projection():
    cam_params = torch.tensor([[8.0, 0.01, -0.02], [6.5, -0.03, 0.0]], dtype=torch.float64)
    cam = OrthographicCamera.from_weak_perspective(cam_params, 224, 224)
    X = torch.randn(2, 15, 3, dtype=torch.float64) * 0.1
    proj = cam.project(X)
    # DECA: n = s * (X.xy + t); image coords ((n_x + 1) / 2 * W, (1 - n_y) / 2 * H) (y flipped)
    n = cam_params[:, None, :1] * (X[..., :2] + cam_params[:, None, 1:])
    expect = torch.stack([(n[..., 0] + 1) / 2 * 224, (1 - n[..., 1]) / 2 * 224], dim=-1)
    assert torch.allclose(proj.pixels, expect, atol=1e-10)
    # nearer points (larger world z, towards the camera) have smaller depth
    assert torch.allclose(proj.depth, -X[..., 2] + cam.depth_offset)
