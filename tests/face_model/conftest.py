"""Fixtures for the face-model tests: the FLAME-format fixture model and its reference forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rig.face_model import FaceModel, RigParams, load_face_model


@pytest.fixture(scope="session")
def flame_pkl(flame_fixture_dir: Path) -> Path:
    return flame_fixture_dir / "generic_model.pkl"


@pytest.fixture(scope="session")
def flame_model64(flame_pkl: Path) -> FaceModel:
    return load_face_model(flame_pkl, dtype=torch.float64)


@pytest.fixture(scope="session")
def reference_forward(flame_fixture_dir: Path) -> dict[str, np.ndarray]:
    with np.load(flame_fixture_dir / "reference_forward.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def reference_arrays(reference_forward):
    """``fn(k)``: case ``k`` of reference_forward.npz as a dict in RigParams file-format keys."""
    def arrays(k: int) -> dict[str, np.ndarray]:
        ref = reference_forward
        pose = ref[f"pose_{k}"]
        return {"shape": ref[f"betas_{k}"], "expression": ref[f"expr_{k}"], "global_pose": pose[0:3],
                "neck_pose": pose[3:6], "jaw_pose": pose[6:9], "eye_pose": pose[9:15], "translation": ref[f"trans_{k}"]}
    return arrays


@pytest.fixture(scope="session")
def reference_params(reference_arrays):
    """``fn(k, model)``: case ``k`` as a RigParams for ``model``."""
    def params(k: int, model: FaceModel) -> RigParams:
        return RigParams.from_arrays(reference_arrays(k), model.n_shape, model.n_expression, model.dtype)
    return params


@pytest.fixture
def single_torch_thread():
    """Run small-tensor tests on one torch thread (opt in: ``pytestmark = pytest.mark.usefixtures(...)``).

    Measured on the shared 2-core machine under load: ops on ~3e4 elements cross torch's
    parallel grain size and each waits on a descheduled OpenMP thread, making a 200-vertex
    forward pass 30x slower (0.28 s vs 9 ms). One thread is also the fastest when idle here.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
