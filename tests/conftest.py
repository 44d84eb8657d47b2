"""Shared test fixtures: where the genuine-format fixture files live."""

from pathlib import Path

import pytest

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
