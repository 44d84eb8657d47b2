"""The landmark-only submodel gives exactly the full model's landmarks and joints."""

from __future__ import annotations

import pytest
import torch

from rig.face_model.loading import load_face_model_data
from rig.face_model.model import FaceModel
from rig.paths import default_head_path
from rig.track.landmark_model import landmark_submodel


def _random_params(model: FaceModel, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    p = model.zero_params(batch)
    for name, scale in (("shape", 1.0), ("expression", 1.0), ("global_pose", 0.4), ("neck_pose", 0.2),
                        ("jaw_pose", 0.2), ("eye_pose", 0.2), ("translation", 0.05)):
        t = getattr(p, name)
        t.copy_(scale * torch.randn(t.shape, generator=g, dtype=t.dtype))
    return p


def _check(data):
    full = FaceModel(data, torch.float64)
    sub_data = landmark_submodel(data)
    sub = FaceModel(sub_data, torch.float64)
    assert sub_data.n_vertices < data.n_vertices or data.n_vertices < 300
    p = _random_params(full, 16, 0)
    a, b = full(p), sub(p)
    torch.testing.assert_close(b.landmarks, a.landmarks, rtol=0, atol=1e-12)
    torch.testing.assert_close(b.joints, a.joints, rtol=0, atol=1e-12)


def test_submodel_matches_flame_fixture_including_dynamic_contour(flame_fixture_dir):
    data = load_face_model_data(flame_fixture_dir / "generic_model.pkl")
    assert data.dynamic_lmk_faces_idx is not None
    _check(data)


def test_submodel_matches_default_head():
    path = default_head_path()
    if not path.is_file():
        pytest.skip("default head not built")
    data = load_face_model_data("default")
    _check(data)
    assert landmark_submodel(data).n_vertices <= 68 * 3 + 5
