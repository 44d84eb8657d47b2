"""``load_face_model``: the spec forms ('default', FLAME .pkl, rig .npz) and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rig.errors import CheckpointError
from rig.face_model import FaceModelData, load_face_model
from rig.face_model.loading import load_face_model_data
from rig.paths import checkpoints_dir, default_head_path, package_dir

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_rig_npz_round_trip_of_a_flame_model_poses_identically(tmp_path, flame_pkl, reference_params):
    data = load_face_model_data(flame_pkl)
    data.save(tmp_path / "flame_as_rig.npz", dtype=np.float64)
    from_npz = load_face_model(tmp_path / "flame_as_rig.npz", dtype=torch.float64)
    from_pkl = load_face_model(flame_pkl, dtype=torch.float64)
    p = reference_params(3, from_pkl)
    a, b = from_pkl(p), from_npz(p)
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.landmarks, b.landmarks)


def test_shipped_files_live_inside_the_package():
    import rig

    assert checkpoints_dir() == package_dir() / "checkpoints" == Path(rig.__file__).resolve().parent / "checkpoints"
    assert default_head_path().is_file() and default_head_path().name == "default_head.npz"


def test_dtype_is_checked_and_folders_are_refused(tmp_path, flame_pkl):
    with pytest.raises(CheckpointError, match="float32 or float64"):
        load_face_model(flame_pkl, dtype=torch.float16)
    with pytest.raises(CheckpointError, match="is a folder"):
        load_face_model(tmp_path)


def test_not_a_rig_npz(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="x.npz"):
        load_face_model(tmp_path / "x.npz")


def test_default_head_loads_when_built():
    if not default_head_path().is_file():
        pytest.skip("default head not built yet")
    model = load_face_model("default")
    assert isinstance(model.data, FaceModelData) and model.has_landmarks
    out = model(model.zero_params(2))
    assert out.landmarks.shape == (2, 68, 3) and out.joints.shape == (2, 5, 3)
