"""JSON files that carry their own format tag and version (dataset descriptions, training snapshots)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rig.errors import InputError


def read_tagged_json(path: str | os.PathLike, fmt: str, version: int, what: str,
                     error: type[InputError] = InputError) -> dict[str, Any]:
    """Read a JSON object whose 'format' is ``fmt`` and whose 'format_version' is at most ``version``.

    ``what`` names the kind of file in messages; every problem raises ``error`` naming the path.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not a readable {what} ({e})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{path}: not a {what} (format is {data.get('format') if isinstance(data, dict) else None!r})")
    if data.get("format_version", 0) > version:
        raise error(f"{path}: {what} format {data['format_version']} is newer than this rig reads ({version})")
    return data
