"""JSON files that carry their own format tag and version (dataset descriptions, training snapshots)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rig.errors import InputError
from rig.io.json_file import read_json_file


def read_tagged_json(path: str | os.PathLike, fmt: str, version: int, what: str,
                     error: type[InputError] = InputError) -> dict[str, Any]:
    """Read a JSON object whose 'format' is ``fmt`` and whose 'format_version' is an integer of at
    most ``version``.

    ``what`` names the kind of file in messages; every problem (missing, over 64 MiB, not JSON,
    nested deeper than 64) raises ``error`` naming the path.
    """
    path = Path(path)
    data = read_json_file(path, what, error)
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else None
        raise error(f"{path}: not a {what} (format is {str(found)[:60]!r})")
    found_version = data.get("format_version", 0)
    if not isinstance(found_version, int) or isinstance(found_version, bool) or found_version < 0:
        raise error(f"{path}: {what} format_version {repr(found_version)[:40]} is not a non-negative integer")
    if found_version > version:
        raise error(f"{path}: {what} format {found_version} is newer than this rig reads ({version})")
    return data
