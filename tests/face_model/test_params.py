"""RigParams: construction, batching, the .npz/.json file rules, and the CLI flag helper."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from rig.errors import InputError, ShapeError
from rig.face_model import RigParams, params_from_flags
from rig.face_model.params import euler_to_axis_angle

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def random_params(batch: int, n_shape: int = 4, n_expr: int = 3, seed: int = 0) -> RigParams:
    g = torch.Generator().manual_seed(seed)
    p = RigParams.zeros(batch, n_shape, n_expr, torch.float64)
    return p.map(lambda t: torch.randn(t.shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("batch", [1, 3])
def test_save_load_round_trip(tmp_path, suffix, batch):
    p = random_params(batch)
    p.save(tmp_path / f"p{suffix}")
    q = RigParams.load(tmp_path / f"p{suffix}", 4, 3, torch.float64)
    for name, t in p.as_dict().items():
        assert torch.equal(getattr(q, name), t), name


def test_single_frame_file_has_no_frame_axis(tmp_path):
    random_params(1).save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as z:
        assert z["shape"].shape == (4,) and z["eye_pose"].shape == (6,)


def test_missing_keys_are_zero_and_short_arrays_are_padded(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"expression": [0.5, -1.0], "translation": [0, 0, 0.2]}))
    p = RigParams.load(tmp_path / "p.json", n_shape=300, n_expr=100)
    assert p.batch_size == 1 and p.shape.shape == (1, 300) and p.expression.shape == (1, 100)
    assert p.expression[0, :2].tolist() == [0.5, -1.0] and not p.expression[0, 2:].any()
    assert not p.shape.any() and not p.global_pose.any() and p.translation[0, 2].item() == pytest.approx(0.2)


def test_too_long_arrays_name_the_file_and_key(tmp_path):
    np.savez(tmp_path / "p.npz", shape=np.zeros(5))
    with pytest.raises(InputError, match=r"p\.npz.*'shape' has 5 values.*at most 4"):
        RigParams.load(tmp_path / "p.npz", 4, 3)


def test_sequence_with_shape_given_once(tmp_path):
    np.savez(tmp_path / "s.npz", shape=np.arange(4.0), expression=np.ones((5, 2)), jaw_pose=np.zeros((5, 3)))
    p = RigParams.load(tmp_path / "s.npz", 4, 3, torch.float64)
    assert p.batch_size == 5
    assert torch.equal(p.shape, torch.arange(4.0, dtype=torch.float64).expand(5, 4))
    assert torch.equal(p.expression[:, :2], torch.ones(5, 2, dtype=torch.float64)) and not p.expression[:, 2].any()


def test_nan_and_pickled_npz_are_refused(tmp_path):
    np.savez(tmp_path / "n.npz", expression=np.array([np.nan]))
    with pytest.raises(InputError, match="NaN"):
        RigParams.load(tmp_path / "n.npz", 4, 3)
    np.savez(tmp_path / "o.npz", expression=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="o.npz"):
        RigParams.load(tmp_path / "o.npz", 4, 3)


def test_indexing_concatenation_and_conversion():
    p = random_params(4)
    assert p[1].batch_size == 1 and torch.equal(p[1].shape, p.shape[1:2])
    assert torch.equal(p[-1].expression, p.expression[3:])
    assert torch.equal(p[1:3].jaw_pose, p.jaw_pose[1:3])
    both = RigParams.cat([p[:2], p[2:]])
    assert all(torch.equal(a, b) for a, b in zip(both.as_dict().values(), p.as_dict().values()))
    assert p.to(torch.float32).dtype == torch.float32
    assert p[0].expand(3).batch_size == 3
    assert p.padded(6, 5).shape.shape == (4, 6)
    full = p.full_pose()
    assert full.shape == (4, 5, 3) and torch.equal(full[:, 3], p.eye_pose[:, :3]) and torch.equal(full[:, 4], p.eye_pose[:, 3:])
    with pytest.raises(ShapeError):
        RigParams(*(t[:2] if i == 2 else t for i, t in enumerate(p.as_dict().values())))


def test_euler_signs():
    R = lambda *a: Rotation.from_rotvec(euler_to_axis_angle(*a)).as_matrix()  # noqa: E731
    forward, up = np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    assert (R(0.3, 0, 0) @ forward)[0] > 0.29  # +yaw: the face turns towards +x (subject's left)
    assert (R(0, 0.3, 0) @ forward)[1] < -0.29  # +pitch: the face looks down
    assert (R(0, 0, 0.3) @ up)[0] < -0.29  # +roll: the top of the head tilts towards -x
    want = Rotation.from_euler("y", 0.4).as_matrix() @ Rotation.from_euler("x", 0.2).as_matrix() @ Rotation.from_euler("z", -0.1).as_matrix()
    assert np.allclose(R(0.4, 0.2, -0.1), want, atol=1e-14)


def test_params_from_flags_composes_on_top_of_the_file(tmp_path, flame_model64):
    file_rot = np.array([0.1, -0.2, 0.05])
    (tmp_path / "p.json").write_text(json.dumps({"global_pose": file_rot.tolist(), "expression": [0.3],
                                                 "jaw_pose": [0.2, 0, 0]}))
    p = params_from_flags(flame_model64, tmp_path / "p.json", None, 25.0, 0.0, 0.0, None)
    got = Rotation.from_rotvec(p.global_pose[0].numpy()).as_matrix()
    want = Rotation.from_euler("y", 25, degrees=True).as_matrix() @ Rotation.from_rotvec(file_rot).as_matrix()
    assert np.allclose(got, want, atol=1e-12)
    assert p.expression[0, 0].item() == pytest.approx(0.3) and p.jaw_pose[0, 0].item() == pytest.approx(0.2)
    p = params_from_flags(flame_model64, tmp_path / "p.json", jaw_deg=10.0)
    assert np.allclose(p.jaw_pose[0].numpy(), [math.radians(10), 0, 0])
    assert p.dtype == flame_model64.dtype and p.shape.shape == (1, flame_model64.n_shape)
    p = params_from_flags(flame_model64)
    assert p.batch_size == 1 and not any(t.any() for t in p.as_dict().values())


def test_flags_apply_to_every_frame_of_a_sequence(tmp_path, flame_model64):
    from rig.face_model import expression_preset

    np.savez(tmp_path / "s.npz", jaw_pose=np.array([[0.1, 0, 0], [0.0, 0.2, 0], [0, 0, 0]]),
             expression=np.zeros((3, 2)))
    p = params_from_flags(flame_model64, tmp_path / "s.npz", "smile", 0.0, 10.0, 0.0, None)
    e, jaw = expression_preset(flame_model64, "smile")
    assert p.batch_size == 3
    assert torch.allclose(p.expression, e.expand(3, -1))
    pitch = Rotation.from_euler("x", 10, degrees=True)
    for t, file_jaw in enumerate([[0.1, 0, 0], [0.0, 0.2, 0], [0, 0, 0]]):
        want = (Rotation.from_rotvec(jaw.numpy()) * Rotation.from_rotvec(file_jaw)).as_matrix()
        assert np.allclose(Rotation.from_rotvec(p.jaw_pose[t].numpy()).as_matrix(), want, atol=1e-12)
        assert np.allclose(Rotation.from_rotvec(p.global_pose[t].numpy()).as_matrix(), pitch.as_matrix(), atol=1e-12)
