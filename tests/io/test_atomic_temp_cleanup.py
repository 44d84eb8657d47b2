"""Hidden temporary files of a SIGKILLed atomic write are removed by the next run writing there;
those of live writers, and files that merely look similar, are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from rig.io.atomic import LEGACY_TEMP_MAX_AGE_S, atomic_path, sweep_stale_temp_files, temp_prefix

_KILLED_WRITER = """
import os, signal, sys
from rig.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a png")
    print(tmp.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""

_NEXT_RUN = """
import sys
from rig.io.atomic import write_text_atomic
write_text_atomic(sys.argv[1], "done")
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_a_sigkilled_writers_temp_file_is_removed_by_the_next_run(tmp_path):
    killed = _python(_KILLED_WRITER, str(tmp_path / "0007.png"))
    assert killed.returncode == -9
    leftover = tmp_path / killed.stdout.strip()
    assert leftover.is_file() and leftover.name.startswith(".0007.tmp-")
    assert not (tmp_path / "0007.png").exists()

    nxt = _python(_NEXT_RUN, str(tmp_path / "0008.txt"))
    assert nxt.returncode == 0, nxt.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0008.txt"]


def test_temp_files_of_live_writers_and_lookalikes_are_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        other_live = tmp_path / (temp_prefix(tmp_path / "a.npz").replace(f"-{os.getpid()}-", f"-{sleeper.pid}-")
                                 + "abcd1234.npz")
        other_live.write_bytes(b"x")
        other_host = tmp_path / ".b.tmp-999999-00000000-abcd1234.npz"  # a dead pid, but another host's tag
        other_host.write_bytes(b"x")
        lookalike = tmp_path / ".notes.tmp-keep"
        lookalike.write_bytes(b"x")
        visible = tmp_path / "c.tmp-abcd1234.png"
        visible.write_bytes(b"x")
        with atomic_path(tmp_path / "d.png") as mine:  # this process's own, in progress
            mine.write_bytes(b"x")
            assert sweep_stale_temp_files(tmp_path) == []
            assert mine.is_file()
        assert other_live.is_file() and other_host.is_file() and lookalike.is_file() and visible.is_file()
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its writer gone, the same name is stale.
    assert sweep_stale_temp_files(tmp_path) == [other_live]


def test_pre_pid_temp_names_are_removed_only_when_a_day_old(tmp_path):
    old = tmp_path / ".params.tmp-k3j_x9a2.npz"
    young = tmp_path / ".snapshot-000120.tmp-ab12cd34.safetensors"
    for p in (old, young):
        p.write_bytes(b"x")
    past = time.time() - LEGACY_TEMP_MAX_AGE_S - 60
    os.utime(old, (past, past))
    assert sweep_stale_temp_files(tmp_path) == [old]
    assert young.is_file()


def test_sweeping_a_missing_folder_is_a_no_op(tmp_path):
    assert sweep_stale_temp_files(tmp_path / "nope") == []
