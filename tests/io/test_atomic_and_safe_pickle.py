import os
import pickle

import pytest

from rig.errors import CheckpointError, UnsafeFileError
from rig.io.atomic import atomic_path, write_text_atomic
from rig.io.safe_pickle import load_restricted


def test_atomic_write_replaces_target_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch pwned_marker",))


def test_atomic_write_gives_the_mode_a_plain_write_would(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_hostile_pickle_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blob = pickle.dumps({"a": _Hostile()})
    with pytest.raises(UnsafeFileError, match="system"):
        load_restricted(blob, allowed={})
    assert not (tmp_path / "pwned_marker").exists()


def test_allowed_globals_are_replaced_by_stand_ins():
    blob = pickle.dumps({"d": dict(a=1)}, protocol=2) + b""
    assert load_restricted(blob, allowed={}) == {"d": {"a": 1}}
    blob = pickle.dumps(complex(1, 2))
    seen = load_restricted(blob, allowed={("builtins", "complex"): lambda re, im: ("complex", re, im)})
    assert seen == ("complex", 1.0, 2.0)


def test_truncated_and_missing_files_give_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"x": 1})[:-3])
    with pytest.raises(CheckpointError, match="bad.pkl"):
        load_restricted(bad, allowed={})
    with pytest.raises(CheckpointError, match="not found"):
        load_restricted(tmp_path / "nope.pkl", allowed={})
