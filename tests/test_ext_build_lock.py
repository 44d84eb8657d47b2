"""rig._ext survives killed builds: a stale torch build baton is cleared, the cache is keyed per environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from rig import _ext


def test_a_stale_torch_lock_is_removed_once_rig_holds_the_build_lock(tmp_path):
    build_dir = tmp_path / "ext-0123"
    build_dir.mkdir()
    (build_dir / "lock").write_text("")  # what a SIGKILLed torch build leaves behind
    with pytest.warns(RuntimeWarning, match="interrupted build"):
        with _ext._build_lock(build_dir):
            assert not (build_dir / "lock").exists()
    assert (tmp_path / "ext-0123.lock").exists()


def test_the_build_lock_waits_for_a_live_holder_and_is_freed_when_it_is_killed(tmp_path):
    build_dir = tmp_path / "ext-live"
    build_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, time
        h = open({str(tmp_path / 'ext-live.lock')!r}, 'a+b')
        fcntl.flock(h, fcntl.LOCK_EX)
        open({str(build_dir / 'lock')!r}, 'w').close()
        print('held', flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    holder.kill()  # SIGKILL mid-"build": the kernel drops its flock, its baton stays
    holder.wait()
    start = time.monotonic()
    with pytest.warns(RuntimeWarning):
        with _ext._build_lock(build_dir):
            assert not (build_dir / "lock").exists()
    assert time.monotonic() - start < 5


def test_the_build_hash_depends_on_the_environment(tmp_path, monkeypatch):
    src = tmp_path / "k.cpp"
    src.write_text("// kernel")
    here = _ext.build_hash("k", [src], ())
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "other-venv"))
    assert _ext.build_hash("k", [src], ()) != here


_TRIVIAL = """
#include <torch/extension.h>
int answer() { return 42; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("answer", &answer); }
"""

_BUILD = """
import sys
from rig._ext import load_cpp_extension
m = load_cpp_extension("rig_killtest", [sys.argv[1]], required=True, cache_dir=sys.argv[2])
print(m.answer())
"""


@pytest.mark.slow
def test_sigkill_during_a_first_use_build_does_not_block_the_next_run(tmp_path):
    src = tmp_path / "killtest.cpp"
    src.write_text(_TRIVIAL)
    cache = tmp_path / "cache"
    first = subprocess.Popen([sys.executable, "-c", _BUILD, str(src), str(cache)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cache.glob("*/lock")) and time.monotonic() < deadline:  # torch's baton: the build is running
        time.sleep(0.05)
    assert list(cache.glob("*/lock")), "the build never started"
    first.kill()
    first.wait()
    second = subprocess.run([sys.executable, "-c", _BUILD, str(src), str(cache)], capture_output=True, timeout=900)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert second.stdout.decode().strip().endswith("42")
    # The killed build left no library, so this run compiled, and said so first; a third finds it built.
    assert f"rig: building the rig_killtest kernel once (~30 s); cached in {cache}" in second.stderr.decode()
    third = subprocess.run([sys.executable, "-c", _BUILD, str(src), str(cache)], capture_output=True, timeout=300)
    assert third.returncode == 0 and "building" not in third.stderr.decode()
