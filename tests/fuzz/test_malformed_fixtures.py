"""The hostile files of ``../shared/fixtures/malformed/``: each is refused through the CLI with one
line on stderr and exit 1, quickly and without a memory blow-up (and by the library with the right
rig error naming the file)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig.errors import CheckpointError, InputError, UnsafeFileError

MAX_SECONDS = 20
MAX_RSS_KB = 2 * 1024 * 1024


def _flame_layout(tmp_path: Path, fixtures_dir: Path, name: str) -> Path:
    """The malformed pickle as ``generic_model.pkl`` with the genuine embeddings beside it."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(fixtures_dir / "malformed" / f"{name}.pkl", folder / "generic_model.pkl")
    for emb in ("flame_static_embedding.pkl", "flame_dynamic_embedding.npy"):
        shutil.copy(fixtures_dir / "flame_format" / emb, folder / emb)
    return folder / "generic_model.pkl"


def _cases(tmp_path: Path, fixtures_dir: Path) -> dict[str, tuple[list[str], Path]]:
    bad = fixtures_dir / "malformed"
    out = tmp_path / "out"
    cases = {}
    for name in ("seg_dtype", "seg_objarray"):
        model = _flame_layout(tmp_path, fixtures_dir, name)
        cases[name] = (["mesh", "--face-model", str(model), "-o", str(out / "m.obj")], model)
    for name in ("memo_2e28", "frame_overflow"):
        cases[name] = (["generate", "--network", str(bad / f"{name}.pkl"), "--outdir", str(out)], bad / f"{name}.pkl")
    cases["unknown_codec"] = (["track", str(bad / "unknown_codec.mp4"), "-o", str(out / "t.npz")],
                              bad / "unknown_codec.mp4")
    return cases


def _run_cli(args: list[str], tmp_path: Path) -> tuple[int, str, float, int]:
    """(exit code, stderr, seconds, peak resident KB) of ``python -m rig.cli ARGS`` in a child process."""
    import threading

    err_file = tmp_path / "stderr.txt"
    start = time.monotonic()
    with open(err_file, "wb") as err, open(os.devnull, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rig.cli", *args], stdout=out, stderr=err)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, in KB on Linux
    finally:
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err_file.read_text(errors="replace"), time.monotonic() - start, usage.ru_maxrss


@pytest.mark.parametrize("name", ["seg_dtype", "seg_objarray", "memo_2e28", "frame_overflow", "unknown_codec"])
def test_malformed_fixture_gives_one_line_and_exit_1(name, tmp_path, fixtures_dir):
    if not (fixtures_dir / "malformed" / "README.md").is_file():
        pytest.skip("../shared/fixtures/malformed is not there")
    args, path = _cases(tmp_path, fixtures_dir)[name]
    code, err, seconds, rss_kb = _run_cli(args, tmp_path)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("rig: error: ") and str(path) in lines[0], err
    assert "internal error" not in err
    assert seconds < MAX_SECONDS
    assert rss_kb < MAX_RSS_KB


def test_malformed_flame_pickles_are_refused_by_the_library(tmp_path, fixtures_dir):
    from rig.face_model.loading import load_face_model_data

    for name in ("seg_dtype", "seg_objarray"):
        model = _flame_layout(tmp_path, fixtures_dir, name)
        with pytest.raises(CheckpointError, match=str(model)):
            load_face_model_data(model)


def test_memo_and_frame_forgeries_are_refused_before_any_allocation(fixtures_dir):
    from rig.stylegan2.nvidia_pickle import read_snapshot

    bad = fixtures_dir / "malformed"
    with pytest.raises(CheckpointError, match=r"memo_2e28\.pkl"):
        read_snapshot(bad / "memo_2e28.pkl")
    with pytest.raises(CheckpointError, match=r"frame_overflow\.pkl: .*FRAME length"):
        read_snapshot(bad / "frame_overflow.pkl")


def test_unknown_codec_is_an_input_error_naming_the_file(fixtures_dir):
    from rig.io.video import read_video_info

    path = fixtures_dir / "malformed" / "unknown_codec.mp4"
    with pytest.raises(InputError, match="unknown_codec.mp4: .*codec") as info:
        read_video_info(path)
    assert not isinstance(info.value, UnsafeFileError)
