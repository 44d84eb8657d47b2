"""The bad-input table of issue 21: each case exits with the README's code, prints exactly one line on
stderr naming the flag or file and the value, and leaves nothing in the output folder (no outputs,
no temporary files). Runs in-process through click's runner.

Unwritable outputs are simulated two ways because the tests run as root (chmod 0o555 does not stop
root): a path under a regular file (the real ENOTDIR), and ``os.replace`` patched to fail with
ENOSPC (a full disk).
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rig.cli import main


def _inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    sh = np.ones(27)
    sh[4] = np.nan
    np.save(folder / "nan_sh.npy", sh)
    (folder / "object_sh.json").write_text(json.dumps({"a": 1}))
    (folder / "huge_jaw.json").write_text('{"jaw_pose": [1e300, 0, 0]}')
    np.save(folder / "nan_ws.npy", np.full((1, 10, 128), np.nan, np.float32))  # the default G: 10 x 128
    return {p.stem: p for p in folder.iterdir()}


# (args with {in}/{out} placeholders, exit code, words the one line must hold)
CASES = {
    "generate --trunc nan": (["generate", "--network", "default", "--trunc", "nan", "--outdir", "{out}/g"], 1,
                             ["--trunc", "nan", "finite"]),
    "generate --trunc inf": (["generate", "--network", "default", "--trunc", "inf", "--outdir", "{out}/g"], 1,
                             ["--trunc", "inf"]),
    "generate --ws NaN file": (["generate", "--network", "default", "--ws", "{in}/nan_ws.npy", "--outdir", "{out}/g"],
                               1, ["nan_ws.npy", "= nan"]),
    "render --jaw inf": (["render", "--jaw", "inf", "--size", "16", "-o", "{out}/r.png"], 1, ["--jaw", "inf"]),
    "render --sh NaN": (["render", "--sh", "{in}/nan_sh.npy", "--size", "16", "-o", "{out}/r.png"], 1,
                        ["nan_sh.npy", "= nan"]),
    "render --sh JSON object": (["render", "--sh", "{in}/object_sh.json", "--size", "16", "-o", "{out}/r.png"], 1,
                                ["object_sh.json", "object"]),
    "mesh --params jaw 1e300": (["mesh", "--params", "{in}/huge_jaw.json", "-o", "{out}/m.obj"], 1,
                                ["huge_jaw.json", "jaw_pose", "1e+300"]),
    "mesh --jaw inf": (["mesh", "--jaw", "inf", "-o", "{out}/m.obj"], 1, ["--jaw", "inf"]),
    "mesh --yaw nan": (["mesh", "--yaw", "nan", "-o", "{out}/m.obj"], 1, ["--yaw", "nan"]),
    "render --yaw nan": (["render", "--yaw", "nan", "-o", "{out}/r.png"], 1, ["--yaw", "nan"]),
    "output under a regular file (ENOTDIR)": (["mesh", "-o", "{out}/file.txt/m.obj"], 3, ["file.txt/m.obj"]),
    "world sample --size 16384": (["world", "sample", "--n", "4", "--size", "16384", "--out", "{out}/w"], 1,
                                  ["--size", "16384"]),
    "track --fps 0": (["track", "{in}", "-o", "{out}/t.npz", "--fps", "0", "--overlay", "{out}/o.mp4"], 1,
                      ["--fps", "0"]),
}


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


def _check(res, code: int, words: list[str]) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == code, (res.exit_code, res.stderr, res.exception)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("rig: error: ") and "internal error" not in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


def _leftovers(out: Path, keep: set[str] = frozenset()) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name not in keep)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_line_its_exit_code_and_writes_nothing(tmp_path, name):
    files = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "file.txt").write_text("a regular file\n")
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    args, code, words = CASES[name]
    res = _run([a.format(**{"in": tmp_path / "in", "out": out}) for a in args])
    _check(res, code, words)
    assert _leftovers(out, {"file.txt"}) == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before  # inputs untouched
    assert set(files) <= {p.stem for p in (tmp_path / "in").iterdir()}


def test_full_disk_names_the_users_file_not_the_temp_file(tmp_path, monkeypatch):
    import rig.io.atomic as atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(atomic.os, "replace", full)
    out = tmp_path / "deep" / "out"
    res = _run(["mesh", "-o", str(out / "m.obj")])
    _check(res, 3, [str(out / "m.obj"), "No space left on device"])
    assert ".tmp-" not in res.stderr
    assert not (tmp_path / "deep").exists()  # the folders the write made are gone with it


def test_memory_error_while_writing_is_an_environment_error(tmp_path, monkeypatch):
    import rig.io.atomic as atomic

    def no_memory(src, dst):
        raise MemoryError()

    monkeypatch.setattr(atomic.os, "replace", no_memory)
    res = _run(["mesh", "-o", str(tmp_path / "m.obj")])
    _check(res, 3, ["m.obj", "out of memory"])
    assert _leftovers(tmp_path) == []


def test_world_sample_checks_its_memory_before_writing(tmp_path):
    from rig.errors import InputError
    from rig.world.config import WorldConfig
    from rig.world.render import render_bytes_per_image, render_side
    from rig.world.sampler import sample_world

    cfg = WorldConfig(resolution=256)
    assert render_side(cfg) == 1024 and render_bytes_per_image(cfg) == 128 * 1024 ** 2
    with pytest.raises(InputError, match=r"--size 256: one image renders at 1024 px .* choose --size 128 or less"):
        sample_world(tmp_path / "w", 4, 0, cfg, memory_budget=100 * 1024 ** 2, progress=False)
    assert not (tmp_path / "w").exists()


def test_generate_rerun_with_other_settings_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "g"
    first = _run(["generate", "--network", "default", "--seeds", "0-1", "--trunc", "0.7", "--outdir", str(out)])
    assert first.exit_code == 0, first.output
    images = {p.name: p.read_bytes() for p in out.glob("*.png")}
    manifest = json.loads((out / ".rig-manifest.json").read_text())
    assert manifest["settings"]["--trunc"] == 0.7 and sorted(images) == ["seed0000.png", "seed0001.png"]

    same = _run(["generate", "--network", "default", "--seeds", "0-1", "--trunc", "0.7", "--outdir", str(out)])
    assert same.exit_code == 0 and "skipped 2" in same.stdout

    other = _run(["generate", "--network", "default", "--seeds", "0", "--trunc", "0.5", "--outdir", str(out)])
    _check(other, 1, [str(out), "--trunc 0.7 (this run: 0.5)", "--overwrite"])
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == images

    forced = _run(["generate", "--network", "default", "--seeds", "0", "--trunc", "0.5", "--outdir", str(out),
                   "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in out.glob("*.png")) == ["seed0000.png"]  # seed 1 of psi 0.7 removed
    assert (out / "seed0000.png").read_bytes() != images["seed0000.png"]
    assert json.loads((out / ".rig-manifest.json").read_text())["settings"]["--trunc"] == 0.5


def test_generate_refuses_a_folder_of_images_without_a_record(tmp_path):
    out = tmp_path / "g"
    out.mkdir()
    (out / "seed0000.png").write_bytes(b"made before manifests")
    res = _run(["generate", "--network", "default", "--seeds", "0", "--outdir", str(out)])
    _check(res, 1, [str(out), "no record"])
    assert (out / "seed0000.png").read_bytes() == b"made before manifests"


@pytest.mark.parametrize("value, words", [
    ("nan", "not a finite number"), ("-inf", "not a finite number"), ("abc", "not a number"),
    ("181", "outside the range"), ("-180.5", "outside the range"),
])
def test_angle_range_refusals(value, words):
    from rig.errors import InputError
    from rig.limits import ANGLE_DEG

    with pytest.raises(InputError, match=f"^--yaw {value}: {words}; choose -180..180 degrees$"):
        ANGLE_DEG.check(value, "--yaw")
    assert ANGLE_DEG.check("-180", "--yaw") == -180.0 and ANGLE_DEG.check(180, "--yaw") == 180


def test_integer_ranges():
    from rig.errors import InputError
    from rig.limits import FPS, WORLD_SIDE

    assert WORLD_SIDE.check("1024", "--size") == 1024
    for bad in ("2.5", "96", "4", "8192", "nan"):
        with pytest.raises(InputError, match="^--size "):
            WORLD_SIDE.check(bad, "--size")
    with pytest.raises(InputError, match=r"^--fps 0: outside the range; choose > 0 \.\. 1000 frames per second$"):
        FPS.check("0", "--fps")
    assert FPS.check("0.5", "--fps") == 0.5
