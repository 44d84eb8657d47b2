"""Fixtures for the StyleGAN2 tests: the NVIDIA tiny64 snapshot, its reference arrays, loaded networks."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny64_pkl(stylegan_fixture_dir):
    path = stylegan_fixture_dir / "tiny64.pkl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def tiny64_ref(stylegan_fixture_dir):
    with np.load(stylegan_fixture_dir / "tiny64_ref.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def tiny64_state(stylegan_fixture_dir):
    with np.load(stylegan_fixture_dir / "tiny64_G_ema_state.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def tiny64_nets(tiny64_pkl):
    from rig.stylegan2.checkpoints import load_nvidia_pkl

    return load_nvidia_pkl(tiny64_pkl)
