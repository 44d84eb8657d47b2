"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or Ctrl-C in the middle of a write therefore never leaves a truncated output behind, and
a batch job that checks ``path.exists()`` to resume never mistakes a half-written file for a done one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Iterator


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the process umask
    (``mkstemp`` creates 0o600 files, which would make every output private)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    ``suffix`` defaults to the target's own suffix so that writers which pick a format from the
    file name (PIL, numpy, PyAV) behave as for the real name. On an exception the temporary file is
    removed and the target is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else (path.suffix or ".tmp")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
