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
  numpy scalars rebuilt from raw bytes (``rig.io.pickled_numpy``).

The opcodes run on rig's budgeted pickle machine. Tensors are views of their storage whose element
count may not exceed the storage's (a stride-0 view cannot blow 500 bytes up to gigabytes), and all
tensors of one file together may hold at most ``TENSOR_BYTES_FACTOR`` times the file's size.

The result is a :class:`NvidiaSnapshot` of records; ``checkpoints.py`` builds rig modules from them.
"""

from __future__ import annotations

import collections
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rig.errors import CheckpointError
from rig.io import pickled_numpy
from rig.io.pickle_vm import PickleMachine, StateRecord, short_repr
from rig.io.safe_pickle import allow_list_lookup, load_restricted, read_file_bytes
from rig.io.tree_walk import convert_tree

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
        kwargs = self.state.get("_init_kwargs") or {}
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise CheckpointError(f"{self.class_name}: _init_kwargs is not a dict of named arguments")
        return dict(kwargs)

    def init_args(self) -> tuple:
        args = self.state.get("_init_args") or ()
        if not isinstance(args, (tuple, list)):
            raise CheckpointError(f"{self.class_name}: _init_args is not a tuple")
        return tuple(args)


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


class _EasyDict(dict, StateRecord):
    """Stand-in for ``dnnlib.util.EasyDict``: the pickle rebuilds it with NEWOBJ + SETITEMS."""

    def __setstate__(self, state):  # attribute dict of an EasyDict is empty; nothing to keep
        pass


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise CheckpointError("persistent object with unexpected metadata (expected type='class' and a class_name)")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"persistent object {meta['class_name']} has no state dict")
    # meta['module_src'] is NVIDIA's source code; it is deliberately never looked at.
    return PersistentRecord(class_name=meta["class_name"], state=state, version=meta.get("version"))


TENSOR_BYTES_FACTOR = 4
MAX_TENSOR_NDIM = 8


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if (not isinstance(value, (tuple, list)) or len(value) > MAX_TENSOR_NDIM
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise CheckpointError(f"tensor {what} {short_repr(value)} is not a short tuple of ints")
    return tuple(value)


def _tensor_rebuilder(budget: pickled_numpy.ByteBudget):
    """``torch._utils._rebuild_tensor_v2`` for one file: checked layout, bounded bytes, own memory."""

    def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                          metadata=None):
        if not isinstance(storage, torch.Tensor) or storage.ndim != 1:
            raise CheckpointError("tensor in pickle does not refer to a storage")
        size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
        if not isinstance(storage_offset, int) or isinstance(storage_offset, bool):
            raise CheckpointError("tensor storage offset is not an int")
        offset = storage_offset
        if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise CheckpointError(f"tensor with invalid layout size={size} stride={stride} offset={offset}")
        numel = math.prod(size)
        if numel:
            last = offset + sum((n - 1) * st for n, st in zip(size, stride))
            if last >= storage.numel():
                raise CheckpointError(f"tensor of size {size} reaches past its storage of {storage.numel()} elements")
        if numel > storage.numel():  # overlapping (e.g. stride-0) views would multiply the file's bytes
            raise CheckpointError(f"tensor of size {size} has more elements than its storage of {storage.numel()}")
        budget.take(numel * storage.element_size())
        return storage.as_strided(size, stride, offset).clone()

    return rebuild_tensor_v2


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
    blob = bytes(blob)
    allowed = {("torch", name): _StorageType(name, dt) for name, dt in _STORAGE_DTYPES.items()}
    refs: dict[str, tuple[_StorageType, int]] = {}

    def persistent_load(pid):
        if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not isinstance(pid[2], str)):
            raise CheckpointError(f"{source}: unexpected persistent id in storage blob: {short_repr(pid)}")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(numel, int) or isinstance(numel, bool):
            raise CheckpointError(f"{source}: storage element count {short_repr(numel)} is not an int")
        refs[key] = (stype, numel)
        return key

    machine = PickleMachine(blob, allow_list_lookup(allowed, source), source, persistent_load)

    def read_pickle(label):
        return machine.load()

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
    pos = machine.pos
    head = blob[pos:pos + 8]
    if len(head) != 8:
        raise CheckpointError(f"{source}: storage blob truncated before its element count")
    (count,) = struct.unpack("<q", head)
    if count != numel or count < 0:
        raise CheckpointError(f"{source}: storage blob element count {count} != declared {numel}")
    itemsize = torch.empty([], dtype=stype.dtype).element_size()
    raw = blob[pos + 8:]
    if len(raw) != count * itemsize:
        raise CheckpointError(f"{source}: storage blob has {len(raw)} data bytes, expected exactly {count * itemsize}")
    if count == 0:
        return torch.empty([0], dtype=stype.dtype)
    return torch.frombuffer(bytearray(raw), dtype=stype.dtype)


def _allow_list(source: str, budget: pickled_numpy.ByteBudget) -> dict:
    def load_from_bytes(blob):
        return parse_legacy_storage(blob, source=f"{source} (tensor storage)")

    return {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("torch._utils", "_rebuild_tensor_v2"): _tensor_rebuilder(budget),
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): load_from_bytes,
        ("numpy.core.multiarray", "scalar"): pickled_numpy.scalar,
        ("numpy._core.multiarray", "scalar"): pickled_numpy.scalar,
        ("numpy", "dtype"): pickled_numpy.DTypeRecord,
    }


def _plain_dict(value: Any, source: str) -> Any:
    return convert_tree(value, lambda x, recurse: x, source)


def read_snapshot(path: str | os.PathLike | bytes, name: str | None = None) -> NvidiaSnapshot:
    """Read an NVIDIA snapshot pickle into records, executing nothing from the file.

    Raises:
        UnsafeFileError: the pickle asks for a global outside the allow-list.
        CheckpointError: missing / malformed file, or not a snapshot dict.
    """
    label = name or (str(path) if not isinstance(path, (bytes, bytearray)) else "<bytes>")
    raw = bytes(path) if isinstance(path, (bytes, bytearray)) else read_file_bytes(path, label)
    budget = pickled_numpy.ByteBudget(TENSOR_BYTES_FACTOR * len(raw) + (1 << 20), label)
    data = load_restricted(raw, _allow_list(label, budget), name=label)
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
    snap.training_set_kwargs = _plain_dict(tsk, label) if isinstance(tsk, dict) else None
    known = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")
    snap.other_keys = sorted(str(k) for k in data if k not in known)
    if snap.G is None and snap.G_ema is None and snap.D is None:
        raise CheckpointError(f"{label}: snapshot holds no network (keys: {sorted(map(str, data))})")
    return snap


MAX_MODULE_DEPTH = 16


def record_state_dict(record: PersistentRecord, prefix: str = "", _seen: frozenset = frozenset()
                      ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Flatten a record tree into (state_dict, {module path: class name}) like ``Module.state_dict``.

    Non-persistent buffers are skipped, as ``state_dict`` would. A module that contains itself, or
    nesting deeper than ``MAX_MODULE_DEPTH``, raises ``CheckpointError``.
    """
    if id(record) in _seen or len(_seen) >= MAX_MODULE_DEPTH:
        raise CheckpointError(f"{prefix or 'network'}: sub-modules form a cycle or nest deeper than {MAX_MODULE_DEPTH}")
    _seen = _seen | {id(record)}
    tensors: dict[str, torch.Tensor] = {}
    classes: dict[str, str] = {prefix.rstrip("."): record.class_name}
    state = record.state

    def group(name: str) -> dict:
        value = state.get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise CheckpointError(f"{prefix or 'network'}: {name} is not a dict of named entries")
        return value

    skip = state.get("_non_persistent_buffers_set") or ()
    skip = {k for k in skip if isinstance(k, str)} if isinstance(skip, (set, frozenset, list, tuple)) else set()
    for name in ("_parameters", "_buffers"):
        for key, value in group(name).items():
            if value is None or (name == "_buffers" and key in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{key}: expected a tensor, found {type(value).__name__}")
            tensors[prefix + key] = value
    for key, child in group("_modules").items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise CheckpointError(f"{prefix}{key}: sub-module is a {type(child).__name__}, not a persistent network")
        t, c = record_state_dict(child, prefix + f"{key}.", _seen)
        tensors.update(t)
        classes.update(c)
    return tensors, classes


__all__ = ["NvidiaSnapshot", "PersistentRecord", "parse_legacy_storage", "read_snapshot", "record_state_dict"]
