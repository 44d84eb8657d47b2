"""Reading ``.npy`` data and ``.npz`` archives from untrusted files without numpy's loader.

``parse_npy`` reads the ``.npy`` header itself (a Python literal, parsed with ``ast.literal_eval``),
accepts only plain numeric / bool dtypes (or, when asked, the object marker ``|O`` whose payload is
a pickle for the caller's restricted unpickler), and checks that the declared shape times the item
size equals the bytes present *before* anything is allocated. ``read_npz`` opens the zip itself
and caps the uncompressed size of every member and of the whole archive.
"""

from __future__ import annotations

import ast
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from rig.errors import CheckpointError
from rig.io.guard import untrusted

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 16
MAX_NDIM = 32
# Little-, big- or native-endian bool / int / uint / float, as np.save writes them.
_NUMERIC_DESCR = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248])$")
# Fixed-width unicode strings (``np.array("text")``), where the caller asks for them.
_STR_DESCR = re.compile(r"^[<>|=]?U([0-9]{1,7})$")
MAX_STR_CHARS = 1 << 20
DEFAULT_MAX_BYTES = 1 << 30


def _header(raw: bytes, label: str) -> tuple[dict, int]:
    if raw[:6] != MAGIC or len(raw) < 10:
        raise CheckpointError(f"{label}: not a .npy file")
    major = raw[6]
    if major == 1:
        hlen, start = int.from_bytes(raw[8:10], "little"), 10
    elif major in (2, 3) and len(raw) >= 12:
        hlen, start = int.from_bytes(raw[8:12], "little"), 12
    else:
        raise CheckpointError(f"{label}: unsupported .npy version {major}")
    if hlen > MAX_HEADER or start + hlen > len(raw):
        raise CheckpointError(f"{label}: .npy header of {hlen} bytes does not fit the file")
    try:
        header = ast.literal_eval(raw[start:start + hlen].decode("latin1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError):
        raise CheckpointError(f"{label}: unreadable .npy header") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise CheckpointError(f"{label}: .npy header is not {{descr, fortran_order, shape}}")
    return header, start + hlen


def _shape(value, label: str) -> tuple[int, ...]:
    if (not isinstance(value, tuple) or len(value) > MAX_NDIM
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        raise CheckpointError(f"{label}: .npy shape {str(value)[:80]} is not a tuple of non-negative ints")
    return value


def parse_npy(raw: bytes, label: str, allow_object: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
              allow_str: bool = False):
    """``raw`` .npy bytes -> a numpy array (native byte order, own memory).

    With ``allow_object=True`` a ``|O`` array is returned as ``("pickle", shape, payload_bytes)``
    for the caller to unpickle with its own allow-list. With ``allow_str=True`` fixed-width unicode
    arrays (``<U7``, at most ``MAX_STR_CHARS`` characters per item) are accepted too; every
    character must be a Unicode code point (a forged one past U+10FFFF is refused). Raises
    ``CheckpointError`` naming ``label``.
    """
    header, offset = _header(raw, label)
    descr, fortran = header["descr"], header["fortran_order"]
    shape = _shape(header["shape"], label)
    if not isinstance(fortran, bool):
        raise CheckpointError(f"{label}: .npy fortran_order is not a bool")
    if descr == "|O" and allow_object:
        return ("pickle", shape, raw[offset:])
    str_match = _STR_DESCR.match(descr) if allow_str and isinstance(descr, str) else None
    if str_match:
        if not 1 <= int(str_match.group(1)) <= MAX_STR_CHARS:
            raise CheckpointError(f"{label}: .npy string width {str_match.group(1)} refused (1..{MAX_STR_CHARS})")
    elif not isinstance(descr, str) or not _NUMERIC_DESCR.match(descr):
        raise CheckpointError(f"{label}: .npy dtype {str(descr)[:40]!r} refused (only plain numeric arrays)")
    dtype = np.dtype(descr)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise CheckpointError(f"{label}: .npy array of shape {shape} needs {nbytes} bytes (limit {max_bytes})")
    if len(raw) - offset != nbytes:
        raise CheckpointError(f"{label}: .npy array of shape {shape} / {dtype} needs {nbytes} data bytes, "
                              f"the file holds {len(raw) - offset}")
    flat = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=offset)
    out = np.array(flat.reshape(shape, order="F" if fortran else "C"), dtype=dtype.newbyteorder("="), order="C",
                   copy=True)
    if str_match and out.size and int(out.reshape(-1).view(np.uint32).max()) > 0x10FFFF:
        raise CheckpointError(f"{label}: .npy string holds a character past U+10FFFF")
    return out


def read_npy(path: str | os.PathLike, allow_object: bool = False, max_bytes: int = DEFAULT_MAX_BYTES):
    """``parse_npy`` of a file; missing / unreadable files give ``CheckpointError``."""
    from rig.io.safe_pickle import read_file_bytes

    label = str(path)
    size = _size(path, label)
    if size > max_bytes + MAX_HEADER + 16:
        raise CheckpointError(f"{label}: {size} bytes is more than the {max_bytes} bytes rig reads from a .npy")
    return parse_npy(read_file_bytes(path, label), label, allow_object, max_bytes)


def _size(path, label: str) -> int:
    try:
        return Path(path).stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{label}: file not found") from None
    except OSError as e:
        raise CheckpointError(f"{label}: cannot read: {e.strerror or e}") from None


def read_npz(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
             allow_str: bool = False) -> dict[str, np.ndarray]:
    """Every numeric array of an ``.npz`` (``np.savez`` / ``savez_compressed``), name -> array.

    Members that are not ``.npy`` files, object arrays, and archives whose members expand to more
    than ``max_bytes`` in all are refused with ``CheckpointError`` naming the file. With
    ``allow_str=True`` unicode string arrays are read too (see ``parse_npy``).
    """
    label = str(path)
    _size(path, label)
    out: dict[str, np.ndarray] = {}
    with untrusted(label, what="not a readable .npz archive"):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(max(int(i.file_size), 0) for i in infos)
            if total > max_bytes or len(infos) > 10_000:
                raise CheckpointError(f"{label}: archive expands to {total} bytes in {len(infos)} members "
                                      f"(limit {max_bytes} bytes)")
            for info in infos:
                name = info.filename
                if not name.endswith(".npy"):
                    raise CheckpointError(f"{label}: member {name[:60]!r} is not a .npy array")
                raw = zf.read(info)
                if len(raw) != info.file_size:
                    raise CheckpointError(f"{label}: member {name[:60]!r} has the wrong size")
                out[name[:-4]] = parse_npy(raw, f"{label} [{name[:60]}]", max_bytes=max_bytes, allow_str=allow_str)
    return out
