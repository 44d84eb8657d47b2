"""Read NVIDIA stylegan2-ada-pytorch network snapshots (``network-snapshot-*.pkl``) safely.

NVIDIA's own loader imports their source tree and *executes* the ``module_src`` string stored in
the pickle. Here nothing from the file runs: a restricted unpickler maps each global the format
uses to a rig stand-in that only records data, and refuses every other global:

* ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` -> :class:`PersistentRecord`
  (class name + the module's ``__dict__``: ``_parameters``, ``_buffers``, ``_modules``,
  ``_init_args``, ``_init_kwargs``); ``module_src`` is dropped unread.
* ``dnnlib.util.EasyDict`` -> a plain ``dict``; ``collections.OrderedDict``.
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` -> tensors built from the storages.
* ``torch.storage._load_from_bytes(blob)`` -> :func:`parse_legacy_storage`, rig's own parser of the
  legacy (non-zip) ``torch.save`` blob, itself read with a restricted unpickler.
* ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` and ``numpy.dtype`` ->
  numpy scalars rebuilt from raw bytes.

The result is a :class:`NvidiaSnapshot` of records; ``checkpoints.py`` builds rig modules from them.
"""

from __future__ import annotations

import collections
import io
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rig.errors import CheckpointError, UnsafeFileError
from rig.io.safe_pickle import _RestrictedUnpickler, load_restricted

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage classes that may appear in a legacy blob -> element dtype.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


@dataclass
class PersistentRecord:
    """One ``@persistent_class`` object of the snapshot, as data: class name and ``__dict__``."""

    class_name: str
    state: dict
    version: int | None = None

    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())


@dataclass
class NvidiaSnapshot:
    """The snapshot dict: networks as records (None when absent) and the dataset options."""

    source: str
    G: PersistentRecord | None = None
    D: PersistentRecord | None = None
    G_ema: PersistentRecord | None = None
    augment_pipe: PersistentRecord | None = None
    training_set_kwargs: dict | None = None
    other_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: torch.dtype


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: the pickle rebuilds it with NEWOBJ + SETITEMS."""

    def __setstate__(self, state):  # attribute dict of an EasyDict is empty; nothing to keep
        pass


class _DType:
    """Stand-in for ``numpy.dtype(name, align, copy)`` + ``__setstate__`` (byte order)."""

    def __init__(self, name, align=False, copy=True):
        if not isinstance(name, str):
            raise CheckpointError(f"numpy dtype with non-string name {name!r}")
        self.name = name
        self.byteorder = "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        try:
            dt = np.dtype(self.name)
        except TypeError:
            raise CheckpointError(f"unsupported numpy dtype {self.name!r}") from None
        if dt.kind not in "biuf":
            raise CheckpointError(f"unsupported numpy dtype {self.name!r}")
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, _DType) or not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("malformed numpy scalar in pickle")
    dt = dtype.numpy()
    if len(data) != dt.itemsize:
        raise CheckpointError(f"numpy scalar of dtype {dt} has {len(data)} bytes")
    return np.frombuffer(bytes(data), dtype=dt)[0].astype(dt.newbyteorder("="))


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise CheckpointError("persistent object with unexpected metadata (expected type='class' and a class_name)")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"persistent object {meta['class_name']} has no state dict")
    # meta['module_src'] is NVIDIA's source code; it is deliberately never looked at.
    return PersistentRecord(class_name=meta["class_name"], state=state, version=meta.get("version"))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, torch.Tensor) or storage.ndim != 1:
        raise CheckpointError("tensor in pickle does not refer to a storage")
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError(f"tensor with invalid layout size={size} stride={stride} offset={offset}")
    if all(s > 0 for s in size):
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= storage.numel():
            raise CheckpointError(f"tensor of size {size} reaches past its storage of {storage.numel()} elements")
    return storage.as_strided(size, stride, offset).clone()


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *extra):
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("parameter in pickle is not a tensor")
    return data


def parse_legacy_storage(blob: bytes, source: str = "<storage>") -> torch.Tensor:
    """Parse one legacy ``torch.save(storage)`` blob into a 1-D CPU tensor of the storage's dtype.

    Layout: pickled magic number, pickled protocol (1001), pickled ``sys_info`` dict, the pickled
    storage reference ``('storage', torch.XStorage, key, location, numel, None)`` (a persistent
    id), the pickled key list, then per key an int64 element count and the raw little-endian data.
    """
    if not isinstance(blob, (bytes, bytearray)):
        raise CheckpointError(f"{source}: storage blob is not bytes")
    f = io.BytesIO(bytes(blob))
    allowed = {("torch", name): _StorageType(name, dt) for name, dt in _STORAGE_DTYPES.items()}
    refs: dict[str, tuple[_StorageType, int]] = {}

    def persistent_load(pid):
        if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not isinstance(pid[2], str)):
            raise CheckpointError(f"{source}: unexpected persistent id in storage blob: {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        refs[key] = (stype, int(numel))
        return key

    def read_pickle(label):
        try:
            return _RestrictedUnpickler(f, allowed, source, persistent_load).load()
        except (UnsafeFileError, CheckpointError):
            raise
        except Exception as e:  # noqa: BLE001 - any malformed pickle is a bad checkpoint
            raise CheckpointError(f"{source}: malformed storage blob ({label}: {type(e).__name__}: {e})") from None

    if read_pickle("magic") != LEGACY_MAGIC:
        raise CheckpointError(f"{source}: storage blob has a wrong magic number (not a legacy torch.save blob)")
    if read_pickle("protocol") != LEGACY_PROTOCOL:
        raise CheckpointError(f"{source}: storage blob has an unsupported protocol version")
    sys_info = read_pickle("sys_info")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise CheckpointError(f"{source}: big-endian storage blobs are not supported")
    root_key = read_pickle("object")
    keys = read_pickle("keys")
    if not isinstance(keys, list) or root_key not in refs or keys != [root_key]:
        raise CheckpointError(f"{source}: storage blob must hold exactly one storage")
    stype, numel = refs[root_key]
    head = f.read(8)
    if len(head) != 8:
        raise CheckpointError(f"{source}: storage blob truncated before its element count")
    (count,) = struct.unpack("<q", head)
    if count != numel or count < 0:
        raise CheckpointError(f"{source}: storage blob element count {count} != declared {numel}")
    itemsize = torch.empty([], dtype=stype.dtype).element_size()
    raw = f.read(count * itemsize)
    if len(raw) != count * itemsize or f.read(1):
        raise CheckpointError(f"{source}: storage blob has {len(raw)} data bytes, expected exactly {count * itemsize}")
    if count == 0:
        return torch.empty([0], dtype=stype.dtype)
    return torch.frombuffer(bytearray(raw), dtype=stype.dtype)


def _allow_list(source: str) -> dict:
    def load_from_bytes(blob):
        return parse_legacy_storage(blob, source=f"{source} (tensor storage)")

    return {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): load_from_bytes,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("numpy", "dtype"): _DType,
    }


def _plain_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_dict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_dict(v) for v in value]
    return value


def read_snapshot(path: str | os.PathLike | bytes, name: str | None = None) -> NvidiaSnapshot:
    """Read an NVIDIA snapshot pickle into records, executing nothing from the file.

    Raises:
        UnsafeFileError: the pickle asks for a global outside the allow-list.
        CheckpointError: missing / malformed file, or not a snapshot dict.
    """
    label = name or (str(path) if not isinstance(path, (bytes, bytearray)) else "<bytes>")
    data = load_restricted(path, _allow_list(label), name=label)
    if isinstance(data, PersistentRecord):  # a bare pickled network, e.g. pickle.dump(G_ema)
        data = {"G_ema": data}
    if not isinstance(data, dict):
        raise CheckpointError(f"{label}: not a stylegan2-ada-pytorch snapshot (top level is {type(data).__name__})")
    snap = NvidiaSnapshot(source=label)
    for key in ("G", "D", "G_ema", "augment_pipe"):
        value = data.get(key)
        if value is not None and not isinstance(value, PersistentRecord):
            raise CheckpointError(f"{label}: entry {key!r} is a {type(value).__name__}, not a network")
        setattr(snap, key, value)
    tsk = data.get("training_set_kwargs")
    snap.training_set_kwargs = _plain_dict(tsk) if isinstance(tsk, dict) else None
    known = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")
    snap.other_keys = sorted(str(k) for k in data if k not in known)
    if snap.G is None and snap.G_ema is None and snap.D is None:
        raise CheckpointError(f"{label}: snapshot holds no network (keys: {sorted(map(str, data))})")
    return snap


def record_state_dict(record: PersistentRecord, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Flatten a record tree into (state_dict, {module path: class name}) like ``Module.state_dict``.

    Non-persistent buffers are skipped, as ``state_dict`` would.
    """
    tensors: dict[str, torch.Tensor] = {}
    classes: dict[str, str] = {prefix.rstrip("."): record.class_name}
    state = record.state
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for key, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and key in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{key}: expected a tensor, found {type(value).__name__}")
            tensors[prefix + key] = value
    for key, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise CheckpointError(f"{prefix}{key}: sub-module is a {type(child).__name__}, not a persistent network")
        t, c = record_state_dict(child, prefix + key + ".")
        tensors.update(t)
        classes.update(c)
    return tensors, classes


__all__ = ["NvidiaSnapshot", "PersistentRecord", "parse_legacy_storage", "read_snapshot", "record_state_dict"]
