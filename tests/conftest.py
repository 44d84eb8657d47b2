"""Shared test fixtures: where the genuine-format fixture files live, and a tiny random generator.

The genuine-format fixtures (a FLAME-format ``generic_model.pkl`` with its landmark embeddings and
reference forward pass, an NVIDIA stylegan2-ada ``tiny64.pkl`` snapshot with reference outputs,
hostile files found by fuzzing) are made outside rig by the files' own tools and are kept in the
project's shared folder, not in this repository: ``../shared/fixtures`` beside the checkout, or the
folder ``RIG_SHARED_FIXTURES`` names. CI has them. Every test that needs them asks for the
``fixtures_dir`` fixture (directly or through another fixture), skips without them, and is counted
in one notice after collection and again in the summary, so a clone without them is told how many
tests it did not run and why.
"""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("RIG_SHARED_FIXTURES") or REPO.parent / "shared" / "fixtures")

# After collection: (tests that need SHARED_FIXTURES while it is absent, tests collected).
_FIXTURE_NEEDS = pytest.StashKey[tuple[int, int]]()


def _fixtures_notice(config) -> str | None:
    needed, total = config.stash.get(_FIXTURE_NEEDS, (0, 0))
    if not needed:
        return None
    return (f"note: {needed} of {total} tests need the genuine-format fixtures (FLAME-format model, NVIDIA "
            f"stylegan2-ada snapshot, hostile files) at {SHARED_FIXTURES}, which is not there: they skip. The "
            "fixtures live in the project's shared folder, not in this repository (CI has them): put its "
            "fixtures/ folder at ../shared/fixtures beside the checkout or set RIG_SHARED_FIXTURES=DIR.")


def pytest_collection_modifyitems(config, items):
    needed = 0 if SHARED_FIXTURES.is_dir() else sum("fixtures_dir" in getattr(i, "fixturenames", ()) for i in items)
    config.stash[_FIXTURE_NEEDS] = (needed, len(items))


def pytest_collection_finish(session):
    notice, reporter = _fixtures_notice(session.config), session.config.pluginmanager.get_plugin("terminalreporter")
    if notice and reporter is not None:
        reporter.write_line(notice, yellow=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    notice = _fixtures_notice(config)
    if notice:
        terminalreporter.write_line(notice, yellow=True)


@pytest.fixture(scope="session", autouse=True)
def _kernels_built():
    """Build (or find cached) every C++ kernel before the first test: a first build prints a notice
    on stderr, and the CLI tests count stderr lines, so the notice must not land inside one of them."""
    from rig.info import build_kernels

    build_kernels()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` beside the checkout, or ``$RIG_SHARED_FIXTURES`` (FLAME-format,
    stylegan2-ada and malformed fixtures); skips the test when the folder is not there."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"needs the genuine-format fixtures at {SHARED_FIXTURES} (see the note in the test summary)")
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
