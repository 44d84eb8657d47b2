"""Freshly mutated copies of genuine files, a few hundred per loader family, in forked workers under
a watchdog (``harness.py``): every case either loads or is refused with a rig error; no crash, no
hang, no memory blow-up, no foreign exception. The default suite runs 300 cases per family (about
45 s of CPU in all over the 21 families); the ``slow`` test 1,000 more; ``benchmarks/fuzz_loaders.py`` is the long run
(``docs/loaders.md``)."""

from __future__ import annotations

import pytest

from .harness import build_families, run_family

SEED = 20261204
FAMILIES = ("video_mp4", "flame_static_pkl", "flame_dynamic_npy", "face_model_npz", "flame_model_pkl",
            "rig_safetensors", "rosinality_pt", "nvidia_pkl", "params_npz", "latents_npy", "sh_npy",
            "face_npz", "face_npz_members", "track_npz", "track_npz_members", "photo_png", "photo_jpeg",
            "rignet_safetensors", "rignet_header", "inverter_safetensors", "inverter_header")
QUICK = 300
MORE = 1000


@pytest.fixture(scope="module")
def families(tmp_path_factory, fixtures_dir):
    return {f.name: f for f in build_families(tmp_path_factory.mktemp("fuzz"), fixtures_dir)}


def _check(families, name, n, start, tmp_path):
    if name not in families:
        pytest.skip(f"no seed file for {name} here")
    result = run_family(families[name], n, SEED, tmp_path, start=start, timeout_s=10.0, rss_limit_mb=2048)
    assert result.tried == n
    assert result.failures == 0, "\n".join(result.examples)
    assert result.rig_errors + result.loaded == n
    # The mutations must mostly break the file, else this tests nothing.
    assert result.rig_errors >= n * families[name].min_refused


@pytest.mark.parametrize("name", FAMILIES)
def test_mutated_files_load_or_are_refused_with_a_rig_error(families, name, tmp_path):
    _check(families, name, QUICK, 0, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_a_thousand_more_mutated_files_per_family(families, name, tmp_path):
    _check(families, name, MORE, QUICK, tmp_path)
