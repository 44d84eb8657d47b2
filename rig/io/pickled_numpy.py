"""numpy arrays, dtypes and scalars out of untrusted pickles, built by rig from validated data.

numpy pickles an array as ``_reconstruct(ndarray, (0,), b'b')`` followed by ``BUILD`` with the
state ``(version, shape, dtype, is_fortran, raw)``, and a dtype as ``dtype('f8', False, True)``
followed by ``BUILD`` with ``(3, '<', ...)``. Handing such state to numpy's C ``__setstate__``
lets a forged file crash the process, so the allow-list entries here only *record* it:
:class:`ArrayRecord` and :class:`DTypeRecord` are ``StateRecord`` stand-ins, and
:func:`build_array` later checks dtype (plain numeric, or object when the caller allows it), shape
and byte count, and makes the array itself with ``np.frombuffer``. ``_frombuffer(buf, dtype,
shape, order)`` (numpy 2's protocol-5 form) and ``scalar(dtype, raw)`` are handled the same way.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np

from rig.errors import CheckpointError, UnsafeFileError
from rig.io.pickle_vm import StateRecord, short_repr

MAX_NDIM = 32
_DTYPE_NAME = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|O[48]?)$")


class DTypeRecord(StateRecord):
    """Stand-in for ``numpy.dtype(name, align, copy)``: a dtype name and the byte order its state gives."""

    def __init__(self, name: Any = None, align: Any = False, copy: Any = True):
        if not isinstance(name, str) or not _DTYPE_NAME.match(name):
            raise UnsafeFileError(f"numpy dtype {short_repr(name)} refused (only plain numeric or object dtypes)")
        self.name = name
        self.byteorder = "="

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        dt = np.dtype(self.name)
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" and dt.itemsize > 1 else dt


class NdarrayToken:
    """What a pickle gets for ``numpy.ndarray``: a name for ``_reconstruct``, never the class."""


class ArrayRecord(StateRecord):
    """Stand-in for an ndarray being unpickled: the state ``(version, shape, dtype, is_fortran, raw)``."""

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def reconstruct(subtype: Any, shape: Any = None, dtype_code: Any = None) -> ArrayRecord:
    """``numpy.core.multiarray._reconstruct``: only the plain ndarray subtype may be rebuilt."""
    if subtype is not NdarrayToken:
        raise UnsafeFileError(f"array rebuild asked for subtype {short_repr(subtype)}, only numpy.ndarray is allowed")
    return ArrayRecord()


def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> ArrayRecord:
    """``numpy._core.numeric._frombuffer`` (protocol 5 arrays) -> an ``ArrayRecord`` with that state."""
    rec = ArrayRecord()
    rec.state = (1, shape, dtype, order == "F", buf)
    return rec


def scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar(dtype, raw)``: numeric scalars from their raw bytes only."""
    if not isinstance(dtype, DTypeRecord):
        raise UnsafeFileError(f"numpy scalar with dtype {short_repr(dtype)} refused")
    dt = dtype.numpy()
    if dt.hasobject:
        raise UnsafeFileError("numpy object scalar refused")
    if isinstance(data, str):  # Python 2 pickles read as latin-1 text
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dt.itemsize:
        raise UnsafeFileError(f"numpy scalar of dtype {dt} with malformed data refused")
    return np.frombuffer(bytes(data), dtype=dt)[0].astype(dt.newbyteorder("="))


def allow_list(modules: tuple[str, ...] = ("numpy.core.multiarray", "numpy._core.multiarray")) -> dict:
    """The numpy entries of an allow-list: ``_reconstruct``, ``scalar``, ``ndarray``, ``dtype``, ``_frombuffer``."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): NdarrayToken, ("numpy", "dtype"): DTypeRecord}
    for mod in modules:
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = frombuffer
    return allowed


class ByteBudget:
    """Bytes of arrays built from one file; a file that references one blob many times cannot multiply it."""

    def __init__(self, limit: int, source: str):
        self.limit, self.used, self.source = int(limit), 0, source

    def take(self, n: int) -> None:
        self.used += int(n)
        if self.used > self.limit:
            raise CheckpointError(f"{self.source}: arrays add up to more than {self.limit} bytes")


def build_array(rec: ArrayRecord, recurse: Callable[[Any], Any], source: str, budget: ByteBudget,
                allow_object: bool = False) -> np.ndarray:
    """Make the ndarray an ``ArrayRecord`` describes, after checking dtype, shape and byte count.

    ``recurse`` converts the elements of an object array (which come from the same restricted
    unpickler); object arrays are refused unless ``allow_object``.
    """
    state = rec.state
    if isinstance(state, tuple) and len(state) == 4:  # pre-versioned numpy state
        state = (0,) + state
    if not isinstance(state, tuple) or len(state) != 5:
        raise CheckpointError(f"{source}: numpy array with malformed state")
    _version, shape, dtype, fortran, raw = state
    if not isinstance(dtype, DTypeRecord):
        raise CheckpointError(f"{source}: numpy array without a dtype")
    if (not isinstance(shape, tuple) or len(shape) > MAX_NDIM
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise CheckpointError(f"{source}: numpy array with malformed shape {short_repr(shape)}")
    dt = dtype.numpy()
    count = math.prod(shape)
    order = "F" if fortran else "C"
    if dt.hasobject:
        if not allow_object:
            raise UnsafeFileError(f"{source}: refused to load: an object array where plain numbers are expected")
        if not isinstance(raw, list) or len(raw) != count:
            raise CheckpointError(f"{source}: object array of shape {shape} with {short_repr(type(raw))} data")
        budget.take(8 * count)
        out = np.empty(count, dtype=object)
        for i, item in enumerate(raw):
            out[i] = recurse(item)
        return out.reshape(shape, order=order)
    if isinstance(raw, str):  # Python 2 byte strings arrive as latin-1 text
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)):
        raise CheckpointError(f"{source}: numpy array data is a {type(raw).__name__}, not bytes")
    if len(raw) != count * dt.itemsize:
        raise CheckpointError(f"{source}: numpy array of shape {shape} / {dt} needs {count * dt.itemsize} bytes, "
                              f"the file gives {len(raw)}")
    budget.take(len(raw))
    flat = np.frombuffer(bytes(raw), dtype=dt, count=count)
    return np.array(flat.reshape(shape, order=order), dtype=dt.newbyteorder("="), order="C", copy=True)
