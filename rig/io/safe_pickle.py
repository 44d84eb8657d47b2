"""A restricted unpickler: the only way rig reads pickle files a user hands it.

Pickles can name any importable callable and call it while loading (``os.system`` in a
``__reduce__``). rig never lets a file choose what runs: every global a pickle asks for is looked
up in an explicit allow-list that maps ``(module, name)`` to a rig-provided stand-in (a plain data
class, ``numpy.dtype``, a tensor rebuilder...). Anything else raises ``UnsafeFileError`` *before*
anything is called. Loaders for specific formats (FLAME's ``generic_model.pkl``, NVIDIA's network
snapshots) supply their own allow-lists built on top of ``load_restricted``.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Mapping

from rig.errors import CheckpointError, UnsafeFileError

AllowList = Mapping[tuple[str, str], Any]


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: AllowList, source: str, persistent_load: Callable | None):
        super().__init__(file, encoding="latin1")
        self._allowed = allowed
        self._source = source
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafeFileError(
                f"{self._source}: refused to load: the pickle asks for '{module}.{name}', "
                "which is not on rig's allow-list for this file type (nothing was executed)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafeFileError(f"{self._source}: refused to load: unexpected persistent id {pid!r}")
        return self._persistent(pid)


def load_restricted(
    source: str | os.PathLike | bytes,
    allowed: AllowList,
    persistent_load: Callable[[Any], Any] | None = None,
    name: str | None = None,
) -> Any:
    """Unpickle ``source`` (a path or raw bytes) allowing only the globals in ``allowed``.

    Args:
        source: file path or the pickle's bytes.
        allowed: ``{(module, name): replacement}``; ``find_class`` returns the replacement.
        persistent_load: optional handler for persistent ids (torch's zip format uses them).
        name: how to call the source in error messages (defaults to the path).

    Raises:
        UnsafeFileError: the pickle references a global outside ``allowed``.
        CheckpointError: the file is missing, truncated or not a pickle.
    """
    if isinstance(source, (bytes, bytearray)):
        label = name or "<bytes>"
        data = bytes(source)
    else:
        path = Path(source)
        label = name or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{label}: file not found") from None
        except OSError as e:
            raise CheckpointError(f"{label}: cannot read: {e.strerror or e}") from None
    try:
        return _RestrictedUnpickler(io.BytesIO(data), allowed, label, persistent_load).load()
    except UnsafeFileError:
        raise
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise CheckpointError(f"{label}: not a readable pickle ({type(e).__name__}: {e})") from None
