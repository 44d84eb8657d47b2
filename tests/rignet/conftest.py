"""Fixtures for the RigNet tests: a small label set of the tiny generator (``tests/conftest.py``) and a trained RigNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def tiny_labels(tiny_generator_file, tmp_path_factory):
    """256 labelled latents of the tiny generator, read by the default world's encoder. A random
    generator draws no faces, so the encoder's face check is bypassed: every sample counts as readable."""
    from rig.rignet.labelers import EncoderLabeler
    from rig.rignet.labels import LabelConfig, label_latents

    read = EncoderLabeler.read

    def read_all(self, images):
        controls, _ = read(self, images)
        return controls, np.ones(len(controls), bool)

    out = tmp_path_factory.mktemp("tiny_labels") / "labels"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(EncoderLabeler, "read", read_all)
        label_latents(LabelConfig(str(tiny_generator_file), out, 256, shard_size=128, batch=64), progress=False)
    return out
