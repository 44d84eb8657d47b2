"""Allow-list unpickling: the only way rig reads pickle files a user hands it.

Pickles can name any importable callable and call it while loading (``os.system`` in a
``__reduce__``). rig never lets a file choose what runs: every global a pickle asks for is looked
up in an explicit allow-list that maps ``(module, name)`` to a rig-provided stand-in (a plain data
class, a guarded array or tensor rebuilder...). Anything else raises ``UnsafeFileError`` *before*
anything is called. The opcodes are interpreted by rig's own budgeted machine
(``rig.io.pickle_vm``), never by CPython's C unpickler, so a hostile file cannot make the loader
allocate a huge memo, recurse without bound, or hand forged state to C ``__setstate__`` code.
Loaders for specific formats (FLAME's ``generic_model.pkl``, NVIDIA's network snapshots) supply
their own allow-lists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from rig.errors import CheckpointError, UnsafeFileError
from rig.io.pickle_vm import PickleBudget, PickleMachine

AllowList = Mapping[tuple[str, str], Any]


def allow_list_lookup(allowed: AllowList, source: str) -> Callable[[str, str], Any]:
    """``find_class`` for ``PickleMachine``: the allow-list's stand-in, or ``UnsafeFileError``."""

    def find_class(module: str, name: str) -> Any:
        try:
            return allowed[(module, name)]
        except (KeyError, TypeError):
            raise UnsafeFileError(
                f"{source}: refused to load: the pickle asks for '{module}.{name}', "
                "which is not on rig's allow-list for this file type (nothing was executed)"
            ) from None

    return find_class


def read_file_bytes(source: str | os.PathLike, label: str | None = None) -> bytes:
    """The bytes of ``source``; ``CheckpointError`` naming it when it is missing or unreadable."""
    label = label or str(source)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{label}: is a folder, not a file") from None
    except OSError as e:
        raise CheckpointError(f"{label}: cannot read: {e.strerror or e}") from None


def load_restricted(
    source: str | os.PathLike | bytes,
    allowed: AllowList,
    persistent_load: Callable[[Any], Any] | None = None,
    name: str | None = None,
    budget: PickleBudget = PickleBudget(),
) -> Any:
    """Unpickle ``source`` (a path or raw bytes) allowing only the globals in ``allowed``.

    Args:
        source: file path or the pickle's bytes.
        allowed: ``{(module, name): replacement}``; ``find_class`` returns the replacement.
        persistent_load: optional handler for persistent ids (torch's formats use them).
        name: how to call the source in error messages (defaults to the path).
        budget: limits on opcodes, memo, objects, nesting and lengths.

    Raises:
        UnsafeFileError: the pickle references a global outside ``allowed`` (or asks for an
            operation rig never performs on untrusted data).
        CheckpointError: the file is missing, truncated, not a pickle, or over budget.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        data = bytes(source)
    else:
        label = name or str(source)
        data = read_file_bytes(source, label)
    machine = PickleMachine(data, allow_list_lookup(allowed, label), label, persistent_load, budget)
    return machine.load()
