"""Reading JSON from untrusted files with bounds: file size, nesting depth, and rig errors only.

``json.loads`` on hostile text can raise ``RecursionError`` (arrays nested 100,000 deep),
``ValueError`` (an integer of more than 4,300 digits) or ``UnicodeDecodeError``, and a parsed value
nested a few hundred deep can still overflow the stack of whatever walks it next. ``parse_json``
turns every such failure into the caller's error naming the file and refuses values nested deeper
than ``max_depth`` (checked without recursion).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rig.errors import InputError

MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 64


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[1]`` is 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


def parse_json(text: str | bytes, label: str, what: str = "JSON", error: type[InputError] = InputError,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``text`` -> the parsed value; ``error(f"{label}: not a readable {what} (...)")`` for anything else."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError, MemoryError) as e:
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise error(f"{label}: not a readable {what} ({detail})") from None
    if json_depth(value) > max_depth:
        raise error(f"{label}: {what} nested deeper than {max_depth} levels")
    return value


def read_json_file(path: str | os.PathLike, what: str = "JSON file", error: type[InputError] = InputError,
                   max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse the JSON file ``path`` (at most ``max_bytes``); missing, unreadable, oversized or
    malformed files raise ``error`` naming the path."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: {size} bytes is more than the {max_bytes} bytes rig reads from a {what}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    return parse_json(raw, str(path), what, error, max_depth)
