"""``probe_video`` decodes an untrusted clip's first frames in a forked child: a decoder crash or
hang there becomes an InputError naming the file, and ``rig track`` survives it with one line."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner

from rig.errors import InputError
from rig.io import video as video_mod
from rig.io.video import probe_video, write_video


@pytest.fixture
def clip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    write_video(path, rng.integers(0, 255, (4, 32, 48, 3), dtype=np.uint8), fps=10)
    return path


def _segfault(path, n_frames, sequence_fps):
    os.kill(os.getpid(), signal.SIGSEGV)


def _abort(path, n_frames, sequence_fps):
    os.abort()


def _hang(path, n_frames, sequence_fps):
    time.sleep(60)
    return ""


def test_a_genuine_clip_probes_clean(clip):
    assert probe_video(clip) is None


def test_an_unreadable_clip_gives_the_readers_error_from_the_child(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="junk.mp4: not a readable video"):
        probe_video(junk)


@pytest.mark.parametrize("child, name", [(_segfault, "SIGSEGV"), (_abort, "SIGABRT")])
def test_a_decoder_crash_in_the_child_is_an_input_error_naming_the_file(clip, child, name):
    with pytest.raises(InputError, match=f"clip.mp4: the video decoder crashed \\({name}\\)"):
        probe_video(clip, _child=child)


def test_a_hanging_decoder_is_killed_after_the_timeout(clip):
    t0 = time.monotonic()
    with pytest.raises(InputError, match="clip.mp4: the video decoder did not finish"):
        probe_video(clip, timeout_s=1.0, _child=_hang)
    assert time.monotonic() - t0 < 10


def test_rig_track_survives_a_decoder_crash_with_one_line_and_exit_1(clip, tmp_path, monkeypatch):
    from rig.cli import main

    monkeypatch.setattr(video_mod, "_probe_in_process", _segfault)
    res = CliRunner().invoke(main, ["track", str(clip), "-o", str(tmp_path / "t.npz")])
    assert res.exit_code == 1
    assert "decoder crashed (SIGSEGV)" in res.output and str(clip) in res.output
    assert not (tmp_path / "t.npz").exists()
