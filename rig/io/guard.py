"""The last line of defence at a loader's boundary: Python errors from untrusted data become rig errors.

Loaders check what they can name (shapes, ranges, counts) with their own messages. Whatever a
hostile file still provokes inside numpy / torch / zipfile / json (``ValueError``, ``IndexError``,
``MemoryError``, ``RecursionError``, ...) is turned by :func:`untrusted` into the loader's error type
naming the file, so one malformed file can never end a command with a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import struct
import zipfile
import zlib
from typing import Iterator

from rig.errors import CheckpointError, RigError

# What parsing hostile bytes can raise besides rig's own errors.
DATA_ERRORS = (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError, ZeroDivisionError,
               MemoryError, RecursionError, EOFError, UnicodeError, struct.error, zipfile.BadZipFile, zlib.error,
               json.JSONDecodeError, NotImplementedError, AssertionError, OSError, RuntimeError)


@contextlib.contextmanager
def untrusted(label: str, error: type[RigError] = CheckpointError, what: str = "malformed file") -> Iterator[None]:
    """Re-raise any ``DATA_ERRORS`` inside the block as ``error(f"{label}: {what} (...)")``; rig errors pass."""
    try:
        yield
    except RigError:
        raise
    except DATA_ERRORS as e:
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise error(f"{label}: {what} ({type(e).__name__}{': ' + detail if detail else ''})") from None


def guarded(fn):
    """Decorator form of :func:`untrusted` for loaders whose first argument is the file they read."""

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        with untrusted(str(path)):
            return fn(path, *args, **kwargs)

    return wrapper
