"""Resumable training snapshots: one safetensors file of tensors plus one JSON file of the rest.

A snapshot named ``snapshot-<nimg>`` in ``RUN/snapshots/`` holds everything a run needs to continue
bit-exactly: G, D and G_ema weights and buffers, both Adam states, the states of every random stream,
and (in the JSON) the config, the progress counters, the data-order state and the loss history.
Both files are written atomically, tensors first; the JSON appearing is what marks a snapshot
complete, so a run killed mid-write resumes from the previous one. Only the newest ``keep`` survive.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import load_file, save_file

from rig.errors import CheckpointError, InputError
from rig.io.atomic import atomic_path, write_text_atomic
from rig.io.guard import untrusted
from rig.io.tagged_json import read_tagged_json
from rig.io.torch_snapshot import MAX_SNAPSHOT_BYTES, check_adam_state, check_state_dict

SNAPSHOT_FORMAT = "rig.train_snapshot"
SNAPSHOT_VERSION = 1
_NAME = re.compile(r"^snapshot-(\d{9})\.json$")


class Snapshot(NamedTuple):
    """A snapshot in memory: ``tensors`` by flat name ('G.<param>', 'opt_G.<i>.<key>', 'rng.<stream>'),
    ``meta`` the JSON-able rest, and ``path`` the JSON file it came from (None before writing)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path | None = None


def snapshot_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "snapshots"


def list_snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """Complete snapshots of a run (their JSON files), oldest first."""
    folder = snapshot_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name) and p.with_suffix(".safetensors").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_snapshot(run_dir: str | os.PathLike) -> Path | None:
    snaps = list_snapshots(run_dir)
    return snaps[-1] if snaps else None


def write_snapshot(run_dir: str | os.PathLike, nimg: int, snap: Snapshot, keep: int) -> Path:
    """Write ``snap`` as ``snapshot-<nimg>`` and delete all but the newest ``keep``; return the JSON path."""
    folder = snapshot_dir(run_dir)
    stem = folder / f"snapshot-{nimg:09d}"
    tensors = {k: v.detach().contiguous() for k, v in snap.tensors.items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp), metadata={"format": SNAPSHOT_FORMAT})
    meta = dict(snap.meta, format=SNAPSHOT_FORMAT, format_version=SNAPSHOT_VERSION, nimg=nimg)
    write_text_atomic(stem.with_suffix(".json"), json.dumps(meta, indent=1))
    for old in list_snapshots(run_dir)[:-keep]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return stem.with_suffix(".json")


def read_snapshot_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON half of a snapshot (config, schedule state, history) without loading its tensors."""
    path = Path(path).with_suffix(".json")
    return read_tagged_json(path, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, "rig training snapshot", CheckpointError)


def read_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot given its ``.json`` (or ``.safetensors``) path; raise ``CheckpointError`` if unusable."""
    path = Path(path).with_suffix(".json")
    meta = read_snapshot_meta(path)
    blob = path.with_suffix(".safetensors")
    if not blob.is_file():
        raise CheckpointError(f"{blob}: snapshot tensors missing")
    if blob.stat().st_size > MAX_SNAPSHOT_BYTES:
        raise CheckpointError(f"{blob}: {blob.stat().st_size} bytes is more than rig reads from a snapshot")
    try:
        tensors = load_file(str(blob))
    except Exception as e:  # noqa: BLE001 - the safetensors parser's errors (SafetensorError, ...) and OS errors
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{blob}: unreadable snapshot tensors ({detail})") from None
    return Snapshot(tensors, meta, path)


# Upper bounds on the sizes a snapshot's config may ask for (NVIDIA's largest StyleGAN2 configs fit), so a
# damaged number cannot make the trainer build networks the size of memory before any tensor is compared.
_CONFIG_BOUNDS = {"resolution": 1024, "z_dim": 1024, "w_dim": 1024, "mapping_layers": 16, "channel_base": 1 << 16,
                  "channel_max": 512, "mbstd_group": 64, "batch": 1024, "pl_batch_shrink": 1024, "grid_size": 256,
                  "keep_snapshots": 10_000, "r1_interval": 1 << 20, "pl_interval": 1 << 20, "threads": 1024}
_MAX_ABS = 1e15


def _field_ok(kind: str, value: Any) -> bool:
    """Whether a JSON value fits a ``TrainConfig`` field annotated ``kind`` (e.g. 'int', 'float | None')."""
    if value is None:
        return "None" in kind
    if kind.startswith("tuple"):
        return isinstance(value, list) and len(value) <= 1024
    if isinstance(value, bool) or kind.startswith("bool"):
        return kind.startswith("bool") and isinstance(value, bool)
    if kind.startswith("int"):
        return isinstance(value, int) and abs(value) <= _MAX_ABS
    if kind.startswith("float"):
        return isinstance(value, (int, float)) and math.isfinite(value) and abs(value) <= _MAX_ABS
    if kind.startswith("str"):
        return isinstance(value, str) and len(value) <= 4096
    return False


def config_from_snapshot(meta: dict[str, Any], label: str):
    """The ``TrainConfig`` a snapshot's JSON holds, every field type-checked and the network sizes
    bounded (``_CONFIG_BOUNDS``) before ``TrainConfig.from_json``; ``CheckpointError`` naming ``label``."""
    from rig.stylegan2.training.config import TrainConfig

    raw = meta.get("config")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{label}: snapshot has no config")
    for f in dataclasses.fields(TrainConfig):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if not _field_ok(str(f.type), value):
            raise CheckpointError(f"{label}: config {f.name} is {repr(value)[:60]}, not a {f.type}")
        if f.name in _CONFIG_BOUNDS and value is not None and not 0 <= value <= _CONFIG_BOUNDS[f.name]:
            raise CheckpointError(f"{label}: config {f.name} {value} out of range (0..{_CONFIG_BOUNDS[f.name]})")
    try:
        with untrusted(label, CheckpointError, "unusable config in the training snapshot"):
            return TrainConfig.from_json(raw)
    except CheckpointError:
        raise
    except InputError as e:  # TrainConfig.validate's message, said of this file
        raise CheckpointError(f"{label}: {e}") from None


# ---------------------------------------------------------------- packing helpers


def pack_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` under '<prefix>.<name>' (cloned, so later training cannot change it)."""
    return {f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()}


def unpack_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load the '<prefix>.*' entries into ``module`` (strict: every name must match)."""
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    check_state_dict(module, state, source, prefix)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: '{prefix}' does not fit this network ({str(e).splitlines()[0]})") from None


def pack_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Adam-style state as tensors '<prefix>.<param index>.<key>' plus the JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.{idx}.{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).detach().clone()
    return tensors, sd["param_groups"]


def unpack_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                     groups: list[dict], source: str) -> None:
    """Inverse of ``pack_optimizer``."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, _, key = name[len(prefix) + 1:].partition(".")
            if not idx.isdigit() or len(idx) > 9 or not key:
                raise CheckpointError(f"{source}: tensor name {name[:60]!r} is not '{prefix}.<index>.<key>'")
            state.setdefault(int(idx), {})[key] = value.clone()
    sd = {"state": state, "param_groups": groups}
    check_adam_state(opt, sd, source, prefix)
    try:
        opt.load_state_dict(sd)
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: '{prefix}' optimiser state does not fit ({e})") from None
