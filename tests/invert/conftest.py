"""Fixtures for the inversion tests: a photo a package ships, and an inverter of the tiny generator."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut photo (512 x 512 RGB, one face)."""
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def tiny_inverter(tiny_generator_file, tmp_path_factory):
    """(inverter file, run folder) of a few training steps of an inverter for the tiny generator, and
    its loss log (list of records)."""
    import json

    from rig.invert.inverter_train import InverterTrainConfig, train_inverter

    run = tmp_path_factory.mktemp("tiny_inverter") / "run"
    cfg = InverterTrainConfig(latent_steps=150, image_steps=25, batch=16, world_batch=0, lr=2e-3, snapshot_s=1e9)
    out = train_inverter(str(tiny_generator_file), run, cfg, progress=False)
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    return out, log


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """16 renders of the default world at the tiny generator's 16 px (a folder ``rig world sample`` writes)."""
    from rig.world.config import WorldConfig
    from rig.world.sampler import sample_world

    out = tmp_path_factory.mktemp("tiny_world") / "world16"
    sample_world(out, 16, 3, WorldConfig(resolution=16), shard_size=8, progress=False)
    return out
