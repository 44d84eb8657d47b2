"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash or Ctrl-C in the middle of a write therefore never leaves a truncated output behind, and
a batch job that checks ``path.exists()`` to resume never mistakes a half-written file for a done one.

A SIGKILL cannot be caught, so a killed writer leaves its hidden temporary file behind. Temporary
names carry the writer's process id and a tag of its host (``.NAME.tmp-PID-HOST-XXXXXXXX.SUFFIX``),
and the first atomic write of a process into a folder removes the temporary files there whose
writer is gone (same host, process no longer alive): the next run of a killed command cleans up
after it. Temporary files of rig before this naming (``.NAME.tmp-XXXXXXXX.SUFFIX``) carry no
process id and are removed once they are a day old.

An output the machine refuses (no permission, a read-only file system, a path under a regular file,
a full disk, memory running out while writing) is a ``RigEnvironmentError`` naming the user's path,
not the temporary file; the temporary file and any folder the write created are removed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterator

# mkstemp's random part: 8 characters of [a-z0-9_].
_TEMP_NAME = re.compile(r"^\..*\.tmp-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[a-z0-9_]{8}")
_LEGACY_TEMP_NAME = re.compile(r"^\..*\.tmp-[a-z0-9_]{8}(\.[^.]*)?$")
LEGACY_TEMP_MAX_AGE_S = 24 * 3600

# OSErrors that say the machine refused a write of valid data, not that the data was wrong.
ENVIRONMENT_ERRNOS = frozenset(getattr(errno, name) for name in (
    "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EFBIG", "ENOTDIR", "EEXIST", "EISDIR", "ENAMETOOLONG",
    "EIO", "EMFILE", "ENFILE", "ENOMEM", "ETXTBSY") if hasattr(errno, name))


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the process umask
    (``mkstemp`` creates 0o600 files, which would make every output private)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """8 hex digits naming this machine, so a folder shared between hosts is swept only by the host
    whose process ids the names hold."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OverflowError, OSError):  # not a pid this system can hold
        return False
    return True


def temp_prefix(path: str | os.PathLike) -> str:
    """The name prefix of this process's temporary files for ``path``: ``.STEM.tmp-PID-HOST-``."""
    return f".{Path(path).stem}.tmp-{os.getpid()}-{_host_tag()}-"


def sweep_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of killed atomic writes in ``folder``; return what was removed.

    Removed: names of this module's pattern whose host tag is this host's and whose process is no
    longer alive, and pre-pid-naming temporary files older than ``LEGACY_TEMP_MAX_AGE_S``. A live
    writer's file (this process's or another's) is never touched. Errors (a folder that vanished,
    no permission) are ignored: cleaning up is best effort and must not fail a write.
    """
    removed: list[Path] = []
    host, me, now = _host_tag(), os.getpid(), time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or ".tmp-" not in name:
            continue
        m = _TEMP_NAME.match(name)
        try:
            if m:
                pid = int(m.group("pid"))
                if m.group("host") != host or pid == me or _pid_alive(pid):
                    continue
            elif not (_LEGACY_TEMP_NAME.match(name) and now - entry.stat(follow_symlinks=False).st_mtime
                      > LEGACY_TEMP_MAX_AGE_S):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


@functools.lru_cache(maxsize=256)
def _swept_once(folder: str) -> None:
    """Sweep ``folder`` the first time this process writes into it (the cache is the memory of that)."""
    sweep_stale_temp_files(folder)


def is_environment_error(e: BaseException) -> bool:
    """True for a ``MemoryError`` or an ``OSError`` whose errno is in ``ENVIRONMENT_ERRNOS``."""
    return isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS)


def environment_error(e: BaseException, path: str | os.PathLike, doing: str = "cannot write"):
    """A ``RigEnvironmentError`` for ``e`` that names ``path`` (the user's path, not a temporary file)."""
    from rig.errors import RigEnvironmentError

    if isinstance(e, MemoryError):
        return RigEnvironmentError(f"{path}: {doing} it: out of memory")
    reason = e.strerror or type(e).__name__ if isinstance(e, OSError) else str(e)
    return RigEnvironmentError(f"{path}: {doing} it: {reason}")


def make_dirs(folder: str | os.PathLike, target: str | os.PathLike | None = None) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created, outermost first.

    A refusal (permission, read-only, a parent that is a regular file) is a ``RigEnvironmentError``
    naming ``target`` (the file the folder is for) or else ``folder``, with nothing created left behind.
    """
    folder = Path(folder)
    missing: list[Path] = []
    p = folder
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created: list[Path] = []
    try:
        for q in reversed(missing):
            q.mkdir(exist_ok=True)
            created.append(q)
    except OSError as e:
        remove_empty_dirs(created)
        raise environment_error(e, folder if target is None else target, "cannot create the folder for") from None
    return created


def remove_empty_dirs(created: list[Path]) -> None:
    """Remove the folders of ``created`` (outermost first, as ``make_dirs`` returns them) that are empty."""
    for q in reversed(created):
        with contextlib.suppress(OSError):
            q.rmdir()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    ``suffix`` defaults to the target's own suffix so that writers which pick a format from the
    file name (PIL, numpy, PyAV) behave as for the real name. On an exception the temporary file is
    removed and the target is left untouched; a refusal by the machine (``is_environment_error``)
    becomes a ``RigEnvironmentError`` naming ``path``, and the folders this write created are removed
    again. The first call for a folder removes the stale temporary files of killed writers there
    (``sweep_stale_temp_files``).
    """
    path = Path(path)
    created = make_dirs(path.parent, path)
    tmp_path: Path | None = None
    try:
        _swept_once(str(path.parent.resolve()))
        suffix = suffix if suffix is not None else (path.suffix or ".tmp")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=suffix)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, path)
    except BaseException as e:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        remove_empty_dirs(created)
        if is_environment_error(e):
            raise environment_error(e, path) from None
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
