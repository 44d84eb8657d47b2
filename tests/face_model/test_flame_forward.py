"""The FLAME forward pass against the fixture's reference vertices and joints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rig.face_model import load_face_model

pytestmark = pytest.mark.usefixtures("single_torch_thread")

REFERENCE_CASES = range(4)  # the cases stored in reference_forward.npz


@pytest.mark.parametrize("k", REFERENCE_CASES)
def test_float64_forward_matches_reference_to_1e8(flame_model64, reference_forward, reference_params, k):
    out = flame_model64(reference_params(k, flame_model64))
    assert np.abs(out.vertices[0].numpy() - reference_forward[f"verts_{k}"]).max() <= 1e-8
    assert np.abs(out.joints[0].numpy() - reference_forward[f"joints_{k}"]).max() <= 1e-8


def test_float32_forward_is_close_and_batched(flame_pkl, reference_forward, reference_params):
    model = load_face_model(flame_pkl, dtype=torch.float32)
    from rig.face_model import RigParams

    params = RigParams.cat([reference_params(k, model) for k in REFERENCE_CASES])
    out = model(params)
    assert out.vertices.dtype == torch.float32 and out.vertices.shape == (4, 162, 3)
    for k in REFERENCE_CASES:
        # float32 carries ~7 digits on coordinates of ~0.1 m.
        assert np.abs(out.vertices[k].double().numpy() - reference_forward[f"verts_{k}"]).max() < 1e-6


def test_reference_cases_are_not_trivial(flame_model64, reference_forward):
    # Guard against a vacuous comparison: the posed meshes differ from the template by far more
    # than the tolerance, and the pose really rotates joints.
    for k in REFERENCE_CASES:
        moved = np.abs(reference_forward[f"verts_{k}"] - flame_model64.data.v_template).max()
        assert moved > 1e-3
        assert np.linalg.norm(reference_forward[f"pose_{k}"]) > 0.1
