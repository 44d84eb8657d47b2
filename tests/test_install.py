"""rig as a user installs it: the wheel carries the embedded default world and only the ``rig``
package, a wheel installed into a fresh virtual environment outside the checkout runs
``rig generate --network default`` and ``rig render`` there, and an install that lacks its package
data says so (not "train one" or "build it")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rig.cli import main

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("default/generator.safetensors", "default/encoder.safetensors", "default/rignet.safetensors",
           "default/inverter.safetensors", "default/README.md", "default_head/default_head.npz",
           "default_head/README.md")


# ------------------------------------------------------------------------------ missing package data

@pytest.mark.parametrize("args, flag", [
    (["generate", "--network", "default", "--seeds", "0"], "--network PATH"),
    (["render", "--size", "32"], "--face-model PATH"),
    (["mesh"], "--face-model PATH"),
    (["puppet", "--network", "default", "--seed", "0"], "--network PATH"),
])
def test_an_install_without_its_package_data_says_so(tmp_path, monkeypatch, args, flag):
    import rig.paths

    monkeypatch.setattr(rig.paths, "checkpoints_dir", lambda: tmp_path / "empty")
    out = tmp_path / "out"
    extra = ["--outdir", str(out)] if args[0] == "generate" else ["-o", str(out / "x.png")]
    result = CliRunner().invoke(main, args + extra)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("rig: error: the ") and "is missing from this rig install" in lines[0]
    assert "reinstall rig" in lines[0] and flag in lines[0] and "rig train" not in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_rig_info_names_the_missing_package_data(tmp_path, monkeypatch):
    import rig.paths

    monkeypatch.setattr(rig.paths, "checkpoints_dir", lambda: tmp_path / "empty")
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    assert "default: unavailable: the embedded default head is missing from this rig install" in result.output
    assert "has not been built" not in result.output


# ------------------------------------------------------------------------------------------ wheel

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout's package files (an in-tree build would reuse a
    stale ``build/`` folder, whose leftovers end up in the wheel)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.cfg", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "rig", src / "rig", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(out), str(src)], check=True, cwd=src, capture_output=True, timeout=600)
    (found,) = out.glob("rig-*.whl")
    return found


def test_wheel_holds_the_rig_package_with_its_default_world_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        entry_points = z.read(f"{dist}/entry_points.txt").decode()
        top_level = z.read(f"{dist}/top_level.txt").decode().split()
        sizes = {i.filename: i.file_size for i in z.infolist()}
    assert {n.split("/")[0] for n in names} == {"rig", dist}
    assert top_level == ["rig"]
    assert "rig = rig.cli:main" in entry_points.splitlines()
    for rel in SHIPPED:
        local = REPO / "rig" / "checkpoints" / rel
        assert sizes.get(f"rig/checkpoints/{rel}") == local.stat().st_size, rel
    assert "rig/render/csrc/rasterize.cpp" in names and "rig/stylegan2/ops/csrc/fir_epilogue.cpp" in names
    assert not any("__pycache__" in n or n.endswith(".so") for n in names)


def _fresh_venv(folder: Path) -> Path:
    """A new virtual environment that borrows this test environment's dependencies (torch, numpy,
    ...) through a ``.pth`` line instead of installing them again. A ``.pth`` line adds the folder
    without running the ``.pth`` files inside it, so the checkout's editable ``rig`` stays out."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True,
                          capture_output=True, text=True).stdout.strip()
    borrowed = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site) / "borrowed_test_env.pth").write_text("".join(f"{p}\n" for p in borrowed))
    return python


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_default_world_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    work = tmp_path / "work"
    work.mkdir()
    # A cold kernel cache: the first command builds each C++ kernel once and says so.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    rig_exe = str(venv / "bin" / "rig")

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([rig_exe, *args], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    where = subprocess.run([str(python), "-c", "import rig, rig.paths; print(rig.__file__); "
                            "print(rig.paths.default_generator_path())"], cwd=work, env=env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    gen = run("generate", "--network", "default", "--seeds", "0-1", "--outdir", "faces")
    assert "building the fused StyleGAN2" in gen.stderr
    faces = [np.asarray(Image.open(work / "faces" / f"seed{s:04d}.png")) for s in (0, 1)]
    for img in faces:
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 10
    assert np.abs(faces[0].astype(int) - faces[1].astype(int)).mean() > 5  # two seeds, two faces

    head = run("render", "--face-model", "default", "--expr", "smile", "--yaw", "25", "--size", "128", "-o", "head.png")
    assert "building the C++ rasterizer" in head.stderr
    img = np.asarray(Image.open(work / "head.png"))
    assert img.shape[:2] == (128, 128) and img.std() > 10
    camera = json.loads((work / "head.camera.json").read_text())
    assert np.asarray(camera["K"]).shape == (3, 3)

    # Second runs find the kernels cached: no notice; rig info --build reports them cached.
    again = run("generate", "--network", "default", "--seeds", "2", "--outdir", "faces")
    assert "building" not in again.stderr
    info = run("info", "--build").stdout
    assert str(venv) in info and "generator.safetensors" in info
    assert "rig_rasterize_cpp: cached" in info and "rig_sg2_fir_epilogue: cached" in info
