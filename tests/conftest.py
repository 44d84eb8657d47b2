"""Shared test fixtures: where the genuine-format fixture files live, and a tiny random generator."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` beside the checkout (FLAME-format and stylegan2-ada fixtures)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def flame_fixture_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "flame_format"


@pytest.fixture(scope="session")
def stylegan_fixture_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "stylegan2_ada"


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
