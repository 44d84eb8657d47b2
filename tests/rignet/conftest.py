"""Fixtures for the RigNet tests: a tiny random generator with a small label set and a trained RigNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def tiny_generator_file(tmp_path_factory):
    """A random 16 px generator (w_dim 16, 6 W+ layers) saved as a rig .safetensors."""
    from rig.stylegan2.checkpoints import save_network
    from rig.stylegan2.config import GeneratorConfig, MappingConfig, SynthesisConfig
    from rig.stylegan2.networks import Generator

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, mapping=MappingConfig(num_layers=2),
                                  synthesis=SynthesisConfig(channel_base=256, channel_max=16))).eval()
    path = tmp_path_factory.mktemp("tiny_g") / "tiny.safetensors"
    save_network(path, G)
    return path


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
