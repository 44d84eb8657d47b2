"""Model fitting on synthetic landmarks: known parameters and camera -> projected landmarks -> fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rig.errors import InputError, ShapeError
from rig.face_model.loading import load_face_model
from rig.paths import default_head_path
from rig.render.camera import OrthographicCamera, PerspectiveCamera
from rig.track.config import TrackConfig
from rig.track.fit import fit_landmarks, interpolate_missing

W, H = 320, 240


def _truth(model, T: int, seed: int, n_shape: int, n_expr: int, expr_scale: float):
    """Smooth, known head motion + expression + identity for T frames (float64)."""
    g = np.random.default_rng(seed)
    t = np.arange(T, dtype=np.float64)
    p = model.zero_params(T)
    p.shape[:, :n_shape] = torch.as_tensor(g.normal(0, 0.5, n_shape))
    p.expression[:, :n_expr] = torch.as_tensor(expr_scale * np.sin(t[:, None] / 9 + np.arange(n_expr)))
    p.global_pose[:, 0] = torch.as_tensor(0.10 * np.sin(t / 11))
    p.global_pose[:, 1] = torch.as_tensor(0.25 * np.sin(t / 13))
    p.global_pose[:, 2] = torch.as_tensor(0.20 * np.sin(t / 15))
    p.jaw_pose[:, 0] = torch.as_tensor(0.08 + 0.06 * np.sin(t / 8))
    p.translation[:, 0] = torch.as_tensor(0.01 * np.sin(t / 10))
    p.translation[:, 2] = torch.as_tensor(0.02 * np.sin(t / 12))
    return p


def _perspective(focal: float, distance: float) -> PerspectiveCamera:
    K = torch.tensor([[focal, 0, W / 2], [0, focal, H / 2], [0, 0, 1.0]], dtype=torch.float64)[None]
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))[None]
    return PerspectiveCamera(K, R, torch.tensor([[0.0, 0.0, distance]], dtype=torch.float64), W, H)


@pytest.fixture(scope="module")
def flame(flame_fixture_dir):
    path = flame_fixture_dir / "generic_model.pkl"
    if not path.is_file():
        pytest.skip("FLAME-format fixture not found")
    return load_face_model(path, dtype=torch.float64)


# The fixture is a tiny synthetic head whose 79 contour bins hold unrelated random triangles, so
# its contour landmarks jump whenever the yaw crosses a degree: no real face does that. The fits
# on it therefore weight the jaw-line points 0 (the forward pass still evaluates FLAME's dynamic
# contour); the default-head test below fits all 68 points.
LIGHT = dict(contour_weight=0.0, shape_prior=1e-6, expression_prior=1e-6, jaw_prior=1e-6, neck_prior=1e-3)


def test_fit_recovers_known_pose_and_landmarks_on_flame_fixture(flame):
    T = 40
    truth = _truth(flame, T, 0, 10, 5, 0.5)
    camera = _perspective(300.0, 0.6)
    lmk = camera.project(flame(truth).landmarks).pixels.numpy()
    detected = np.ones(T, bool)
    res = fit_landmarks(flame, lmk, detected, W, H, TrackConfig(focal_px=300.0, smooth=0.0, **LIGHT))
    err = np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1))[:, 17:]
    assert err.mean() < 0.1, f"static landmark error {err.mean():.3f} px"
    assert (res.params.global_pose - truth.global_pose).abs().max() < 0.01
    assert (res.params.jaw_pose[:, 0] - truth.jaw_pose[:, 0]).abs().max() < 0.02
    # The camera is fixed at the median head distance; per-frame depth lives in translation, so
    # compare where the head is relative to the camera: the head-centre depth in camera space.
    # Identity size and distance trade off (a larger head further away looks the same), so the
    # depth is known up to a common factor: compare its changes, and its level loosely.
    with torch.no_grad():
        fit_depth = res.t[2] - (flame(res.params).joints[:, 0, 2]).numpy()
        true_depth = 0.6 - (flame(truth).joints[:, 0, 2]).numpy()
    np.testing.assert_allclose(fit_depth / fit_depth.mean(), true_depth / true_depth.mean(), atol=2e-3)
    assert fit_depth.mean() == pytest.approx(true_depth.mean(), rel=0.05)
    assert res.focal_px == 300.0 and res.K[0, 2] == W / 2 and res.K[1, 2] == H / 2
    assert res.params.eye_pose.abs().max() == 0  # not observable in 68 landmarks


def test_missing_frames_are_bridged_and_flagged(flame):
    T = 30
    truth = _truth(flame, T, 1, 10, 3, 0.3)
    lmk = _perspective(300.0, 0.6).project(flame(truth).landmarks).pixels.numpy()
    detected = np.ones(T, bool)
    detected[[10, 11, 12]] = False
    observed = lmk.copy()
    observed[~detected] = np.nan
    res = fit_landmarks(flame, observed, detected, W, H, TrackConfig(focal_px=300.0, smooth=0.1, **LIGHT))
    assert np.isnan(res.residual_px[~detected]).all() and np.isfinite(res.residual_px[detected]).all()
    err = np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1))[:, 17:].mean(-1)
    assert err[detected].max() < 1.0
    # Through the gap the smooth motion is interpolated: within a few pixels of the truth.
    assert err[~detected].max() < 4.0
    # A linear interpolation of the landmarks would do about as well; the fit must not be worse than 2x.
    interp = interpolate_missing(observed, detected)
    interp_err = np.sqrt(((interp - lmk) ** 2).sum(-1))[:, 17:].mean(-1)[~detected]
    assert err[~detected].max() < 2 * interp_err.max() + 0.5


def test_focal_length_is_estimated_near_truth_from_perspective_cues(flame):
    T = 40
    truth = _truth(flame, T, 2, 10, 3, 0.3)
    lmk = _perspective(260.0, 0.45).project(flame(truth).landmarks).pixels.numpy()
    cfg = TrackConfig(focal_px=None, smooth=0.0, default_fov_deg=50.0, focal_prior=1e-4, **LIGHT)
    res = fit_landmarks(flame, lmk, np.ones(T, bool), W, H, cfg)
    start = (W / 2) / math.tan(math.radians(25.0))
    assert abs(math.log(res.focal_px / 260.0)) < 0.5 * abs(math.log(start / 260.0))
    assert np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1))[:, 17:].mean() < 0.3


def test_weak_perspective_fit(flame):
    T = 24
    truth = _truth(flame, T, 3, 10, 3, 0.3)
    truth.translation.zero_()
    cam = torch.stack([torch.full((T,), 6.0, dtype=torch.float64),
                       torch.as_tensor(0.01 * np.sin(np.arange(T) / 5)), torch.full((T,), -0.005, dtype=torch.float64)], 1)
    lmk = OrthographicCamera.from_weak_perspective(cam, W, H).project(flame(truth).landmarks).pixels.numpy()
    res = fit_landmarks(flame, lmk, np.ones(T, bool), W, H, TrackConfig(camera="weak_perspective", smooth=0.0, **LIGHT))
    assert res.K is None and res.weak_perspective.shape == (T, 3)
    assert np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1))[:, 17:].mean() < 0.1
    np.testing.assert_allclose(res.weak_perspective[:, 0], 6.0, rtol=0.02)
    assert (res.params.global_pose - truth.global_pose).abs().max() < 0.02


def test_default_head_fit_with_all_68_points():
    if not default_head_path().is_file():
        pytest.skip("default head not built")
    model = load_face_model("default", dtype=torch.float64)
    T = 30
    truth = _truth(model, T, 4, 10, 8, 0.2)
    truth.expression.clamp_(min=0)  # ARKit-style units: activations in [0, 1]
    lmk = _perspective(400.0, 0.7).project(model(truth).landmarks).pixels.numpy()
    res = fit_landmarks(model, lmk, np.ones(T, bool), W, H,
                        TrackConfig(focal_px=400.0, smooth=0.0, shape_prior=1e-6, expression_prior=1e-6))
    err = np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1))
    assert err.mean() < 0.3, f"mean error {err.mean():.3f} px"
    assert (res.params.global_pose - truth.global_pose).abs().max() < 0.03


def test_no_detection_and_bad_shapes_raise(flame):
    with pytest.raises(InputError, match="no face"):
        fit_landmarks(flame, np.full((5, 68, 2), np.nan), np.zeros(5, bool), W, H)
    with pytest.raises(ShapeError):
        fit_landmarks(flame, np.zeros((5, 51, 2)), np.ones(5, bool), W, H)
    with pytest.raises(InputError):
        TrackConfig(camera="fisheye")


def test_dynamic_contour_path_on_a_face_like_model():
    """FLAME's 51 + yaw-binned contour layout, built from the default head (every bin = its jaw line).

    Exercises the contour-bin code of the fit (bins fixed during finite differences, the blendshape
    Jacobian through binned triangles) with the jaw-line points weighted, on a real face shape.
    """
    import dataclasses

    from rig.face_model.loading import load_face_model_data
    from rig.face_model.model import FaceModel

    if not default_head_path().is_file():
        pytest.skip("default head not built")
    data = load_face_model_data("default")
    flame_like = dataclasses.replace(
        data, lmk_faces_idx=data.lmk_faces_idx[17:], lmk_bary_coords=data.lmk_bary_coords[17:],
        dynamic_lmk_faces_idx=np.tile(data.lmk_faces_idx[:17], (79, 1)),
        dynamic_lmk_bary_coords=np.tile(data.lmk_bary_coords[:17], (79, 1, 1))).validate("flame-like")
    model = FaceModel(flame_like, torch.float64)
    full = FaceModel(data, torch.float64)
    T = 20
    truth = _truth(model, T, 5, 10, 6, 0.2)
    truth.expression.clamp_(min=0)
    torch.testing.assert_close(model(truth).landmarks, full(truth).landmarks)  # same points, other layout
    lmk = _perspective(400.0, 0.7).project(model(truth).landmarks).pixels.numpy()
    res = fit_landmarks(model, lmk, np.ones(T, bool), W, H,
                        TrackConfig(focal_px=400.0, smooth=0.0, shape_prior=1e-6, expression_prior=1e-6))
    assert np.sqrt(((res.landmarks_fit - lmk) ** 2).sum(-1)).mean() < 0.3
    assert (res.params.global_pose - truth.global_pose).abs().max() < 0.03


@pytest.mark.parametrize("which", ["flame", "default"])
def test_blendshape_jacobian_matches_finite_differences(which, flame):
    """The analytic blendshape Jacobian of the LM solver (fast path) against whole-model differences."""
    from rig.track.fit import _ClipFitter

    if which == "default":
        if not default_head_path().is_file():
            pytest.skip("default head not built")
        model = load_face_model("default", dtype=torch.float64)
    else:
        model = flame
    B = 3
    lmk = np.random.default_rng(0).uniform(100, 200, (B, 68, 2))
    fitter = _ClipFitter(model, lmk, np.ones(B, bool), W, H, TrackConfig(n_shape=8, n_expression=6))
    g = torch.Generator().manual_seed(1)
    state = {k: v.clone() for k, v in fitter.init.items()}
    state["global_pose"] = state["global_pose"] + 0.3 * torch.randn(B, 3, generator=g, dtype=torch.float64)
    state["jaw_pose"] = 0.1 * torch.randn(B, 3, generator=g, dtype=torch.float64)
    state["expression"] = 0.3 * torch.randn(B, fitter.E, generator=g, dtype=torch.float64)
    shape = 0.5 * torch.randn(fitter.S, generator=g, dtype=torch.float64)
    bins = fitter._contour_bins(state)
    base = fitter._project_fixed_bins(state, bins, shape)
    eps = 1e-6
    for columns, n in ((slice(0, fitter.S), fitter.S), (slice(fitter.S, fitter.S + fitter.E), fitter.E)):
        fast = fitter._blend_jacobian(state, bins, columns, shape)
        ref = torch.zeros_like(fast)
        for k in range(n):
            st, sh = {key: v.clone() for key, v in state.items()}, shape.clone()
            if columns.start == 0:
                sh[k] += eps
            else:
                st["expression"][:, k] += eps
            ref[:, :, k] = ((fitter._project_fixed_bins(st, bins, sh) - base) / eps).reshape(B, 136)
        assert float((fast - ref).norm() / ref.norm()) < 1e-4


def test_interpolate_missing_is_linear_inside_and_constant_at_the_ends():
    T = 7
    lmk = np.full((T, 68, 2), np.nan)
    detected = np.array([False, True, False, False, True, True, False])
    lmk[1], lmk[4], lmk[5] = 1.0, 4.0, 10.0
    out = interpolate_missing(lmk, detected)
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.0, 2.0, 3.0, 4.0, 10.0, 10.0])
    with pytest.raises(InputError):
        interpolate_missing(lmk, np.zeros(T, bool))


def test_outlier_frames_flag_badly_fitted_detections():
    from rig.track.pipeline import outlier_frames

    rng = np.random.default_rng(0)
    lmk = rng.normal(0, 30.0, (10, 68, 2)) + 100.0  # RMS radius ~42 px
    residual = np.full(10, 1.0)
    residual[3] = 8.0   # > 3x median and > 8% of the radius
    residual[5] = 2.5   # 2.5x median: fine
    residual[7] = np.nan  # undetected: never an outlier
    flags = outlier_frames(residual, lmk)
    np.testing.assert_array_equal(np.flatnonzero(flags), [3])
