"""Resumable training snapshots: one safetensors file of tensors plus one JSON file of the rest.

A snapshot named ``snapshot-<nimg>`` in ``RUN/snapshots/`` holds everything a run needs to continue
bit-exactly: G, D and G_ema weights and buffers, both Adam states, the states of every random stream,
and (in the JSON) the config, the progress counters, the data-order state and the loss history.
Both files are written atomically, tensors first; the JSON appearing is what marks a snapshot
complete, so a run killed mid-write resumes from the previous one. Only the newest ``keep`` survive.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rig.errors import CheckpointError
from rig.io.atomic import atomic_path, write_text_atomic
from rig.io.tagged_json import read_tagged_json

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
    try:
        tensors = load_file(str(blob))
    except FileNotFoundError:
        raise CheckpointError(f"{blob}: snapshot tensors missing") from None
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{blob}: unreadable snapshot tensors ({e})") from None
    return Snapshot(tensors, meta, path)


# ---------------------------------------------------------------- packing helpers


def pack_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` under '<prefix>.<name>' (cloned, so later training cannot change it)."""
    return {f"{prefix}.{k}": v.detach().clone() for k, v in module.state_dict().items()}


def unpack_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load the '<prefix>.*' entries into ``module`` (strict: every name must match)."""
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
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
            idx, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value.clone()
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: '{prefix}' optimiser state does not fit ({e})") from None
