"""Reading training snapshots back as untrusted files (``--resume`` of every ``rig train`` command).

A snapshot on disk may be damaged (a full disk, a copy cut short) or edited; resuming from it must
end in one ``CheckpointError`` naming the file, never in a traceback, a network silently filled with
NaN, an optimiser whose moments do not fit its parameters, or a tensor the size of memory.

* ``read_torch_snapshot``: ``torch.load(weights_only=True)`` (torch's restricted unpickler: tensors
  and plain containers only, nothing executed) of a file under a size cap; any failure, and a top
  level that is not a dict with the expected keys, is a ``CheckpointError``.
* ``load_module_state`` / ``check_state_dict``: a state dict's names, shapes and dtypes must equal the
  module's own (built from the run's config), every tensor must lie inside its storage without
  overlapping itself, and every floating tensor must be finite; only then ``load_state_dict``.
* ``load_optimizer_state`` / ``check_adam_state``: an Adam / AdamW state dict must have the fresh
  optimiser's parameter groups (same keys, parameter indices and value types, finite
  hyper-parameters in range) and, per parameter, a scalar ``step`` >= 0 and finite moments of the
  parameter's shape and dtype (``exp_avg_sq`` >= 0).
* ``snapshot_int`` / ``snapshot_float`` / ``snapshot_str``: typed, bounded scalar fields.

Each check is one pass over the tensors (a few ms for the inverter's ~4 M parameters), done once
per resume.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from rig.errors import CheckpointError

MAX_SNAPSHOT_BYTES = 8 << 30
_ADAM_STATE = {"step", "exp_avg", "exp_avg_sq"}
_ADAM_OPTIONAL = {"max_exp_avg_sq"}


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


def read_torch_snapshot(path: str | os.PathLike, keys: Iterable[str], what: str = "training snapshot",
                        max_bytes: int = MAX_SNAPSHOT_BYTES) -> dict[str, Any]:
    """The dict a training command saved with ``torch.save``, read with ``weights_only=True``.

    ``keys``: the names the dict must hold (others are refused too: a snapshot is rig's own format).
    Raises ``CheckpointError`` naming ``path`` for a missing, oversized or unreadable file or another
    layout. Tensors come back on the CPU, unchecked: pass them through ``load_module_state`` /
    ``load_optimizer_state``.
    """
    label = str(path)
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{label}: {what} not found") from None
    except OSError as e:
        raise CheckpointError(f"{label}: cannot read the {what} ({e.strerror or e})") from None
    if size > max_bytes:
        raise CheckpointError(f"{label}: {size} bytes is more than the {max_bytes} bytes rig reads from a {what}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - weights_only refusals, zip and pickle errors alike
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise CheckpointError(f"{label}: not a readable {what} ({type(e).__name__}"
                              f"{': ' + detail if detail else ''})") from None
    want = set(keys)
    if not isinstance(data, dict) or set(data) != want:
        found = sorted(map(_short, data))[:12] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{label}: not a {what} of this kind (expected keys {sorted(want)}, found {found})")
    return data


def check_tensor(t: Any, label: str, name: str, shape: Sequence[int] | None = None,
                 dtype: torch.dtype | None = None, nonnegative: bool = False) -> torch.Tensor:
    """``t`` must be a tensor (of ``shape`` / ``dtype`` where given) that lies inside its storage without
    overlapping itself; floating tensors must be finite (and >= 0 with ``nonnegative``)."""
    if not isinstance(t, torch.Tensor):
        raise CheckpointError(f"{label}: {name} is a {type(t).__name__}, not a tensor")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise CheckpointError(f"{label}: {name} has shape {tuple(t.shape)}, this run needs {tuple(shape)}")
    if dtype is not None and t.dtype != dtype:
        raise CheckpointError(f"{label}: {name} is {t.dtype}, this run needs {dtype}")
    if t.layout != torch.strided or t.is_quantized:
        raise CheckpointError(f"{label}: {name} is not a dense tensor")
    if t.numel():
        # torch.load builds views over the file's storages without copying; a view that repeats
        # elements (stride 0) would turn a few bytes into gigabytes on the first copy.
        extent = t.storage_offset() + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) + 1
        storage_elems = t.untyped_storage().nbytes() // t.element_size()
        if t.numel() > storage_elems or extent > storage_elems or min(t.stride(), default=1) < 0:
            raise CheckpointError(f"{label}: {name} of shape {tuple(t.shape)} does not fit its storage "
                                  "(overlapping or out-of-range view)")
        if t.is_floating_point() or t.is_complex():
            if not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"{label}: {name} holds NaN or infinite values")
            if nonnegative and bool((t < 0).any()):
                raise CheckpointError(f"{label}: {name} holds negative values")
    return t


def check_state_dict(module: torch.nn.Module, state: Any, label: str, key: str) -> dict[str, torch.Tensor]:
    """``state`` checked against ``module.state_dict()``: the same names, each tensor of the module's
    shape and dtype, inside its storage and finite. Returns it; raises ``CheckpointError``."""
    own = module.state_dict()
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{label}: '{key}' is not a state dict")
    if set(state) != set(own):
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        raise CheckpointError(f"{label}: '{key}' does not fit this network (missing {missing[:5]}, "
                              f"unexpected {[_short(k, 40) for k in extra[:5]]})")
    for name, ref in own.items():
        check_tensor(state[name], label, f"'{key}.{name}'", ref.shape, ref.dtype)
    return state


def load_module_state(module: torch.nn.Module, state: Any, label: str, key: str) -> None:
    """``check_state_dict`` then ``module.load_state_dict(state, strict=True)``."""
    check_state_dict(module, state, label, key)
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:  # checked above; kept as the last line of defence
        raise CheckpointError(f"{label}: '{key}' does not fit this network ({str(e).splitlines()[0][:160]})") from None


def _like(value: Any, ref: Any) -> bool:
    """Whether a parameter-group value has the type of the fresh optimiser's (lists stand for tuples,
    as JSON writes them; numbers must be finite)."""
    if isinstance(ref, bool) or ref is None:
        return type(value) is type(ref)
    if isinstance(ref, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(ref, (tuple, list)):
        return (isinstance(value, (tuple, list)) and len(value) == len(ref)
                and all(_like(v, r) for v, r in zip(value, ref)))
    if isinstance(ref, str):
        return isinstance(value, str) and len(value) < 256
    if isinstance(ref, torch.Tensor):  # e.g. a tensor learning rate
        return isinstance(value, torch.Tensor) and value.shape == ref.shape
    return False


def _check_group_ranges(group: dict, label: str, where: str) -> None:
    lr = group.get("lr")
    if isinstance(lr, (int, float)) and not 0 <= lr <= 1e3:
        raise CheckpointError(f"{label}: {where} lr {_short(lr)} out of range (0..1000)")
    betas = group.get("betas")
    if isinstance(betas, (tuple, list)) and not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise CheckpointError(f"{label}: {where} betas {_short(betas)} out of range [0, 1)")
    for name in ("eps", "weight_decay"):
        v = group.get(name)
        if isinstance(v, (int, float)) and not 0 <= v <= 1e3:
            raise CheckpointError(f"{label}: {where} {name} {_short(v)} out of range (0..1000)")


def check_adam_state(opt: torch.optim.Optimizer, state: Any, label: str, key: str) -> dict:
    """``state`` (an ``Adam`` / ``AdamW`` ``state_dict()``) checked against the optimiser ``opt`` of this
    run: see the module docstring. Returns it; raises ``CheckpointError``."""
    fresh = opt.state_dict()
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise CheckpointError(f"{label}: '{key}' is not an optimiser state (expected state and param_groups)")
    groups = state["param_groups"]
    if not isinstance(groups, (list, tuple)) or len(groups) != len(fresh["param_groups"]):
        raise CheckpointError(f"{label}: '{key}' has {_short(groups, 20) if not isinstance(groups, (list, tuple)) else len(groups)} "
                              f"parameter groups, this run has {len(fresh['param_groups'])}")
    for g, (group, ref) in enumerate(zip(groups, fresh["param_groups"])):
        where = f"'{key}' group {g}"
        if not isinstance(group, dict) or set(group) != set(ref):
            found = sorted(map(_short, group))[:12] if isinstance(group, dict) else type(group).__name__
            raise CheckpointError(f"{label}: {where} has keys {found}, this optimiser {sorted(ref)}")
        ids = group["params"]
        if (not isinstance(ids, (list, tuple)) or not all(type(i) is int for i in ids)
                or list(ids) != list(ref["params"])):
            raise CheckpointError(f"{label}: {where} holds other parameters than this run's")
        for name, value in group.items():
            if name != "params" and not _like(value, ref[name]):
                raise CheckpointError(f"{label}: {where} {name} is {_short(value)}, expected a value like {_short(ref[name])}")
        _check_group_ranges(group, label, where)
    params = [p for group in opt.param_groups for p in group["params"]]
    per_param = state["state"]
    if not isinstance(per_param, dict):
        raise CheckpointError(f"{label}: '{key}' state is a {type(per_param).__name__}, not a dict")
    for idx, entry in per_param.items():
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(params):
            raise CheckpointError(f"{label}: '{key}' holds state for parameter {_short(idx)}; this run has {len(params)}")
        if not isinstance(entry, dict) or not _ADAM_STATE <= set(entry) <= _ADAM_STATE | _ADAM_OPTIONAL:
            found = sorted(map(_short, entry)) if isinstance(entry, dict) else type(entry).__name__
            raise CheckpointError(f"{label}: '{key}' state of parameter {idx} has keys {found}, expected "
                                  f"{sorted(_ADAM_STATE)}")
        p = params[idx]
        step = check_tensor(entry["step"], label, f"'{key}' step of parameter {idx}")
        if step.numel() != 1 or not step.is_floating_point() or float(step) < 0:
            raise CheckpointError(f"{label}: '{key}' step of parameter {idx} is not one non-negative number")
        for name in set(entry) - {"step"}:
            check_tensor(entry[name], label, f"'{key}' {name} of parameter {idx}", p.shape, p.dtype,
                         nonnegative=name != "exp_avg")
    return state


def load_optimizer_state(opt: torch.optim.Optimizer, state: Any, label: str, key: str) -> None:
    """``check_adam_state`` then ``opt.load_state_dict(state)``."""
    check_adam_state(opt, state, label, key)
    try:
        opt.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as e:  # checked above; the last line of defence
        raise CheckpointError(f"{label}: '{key}' optimiser state does not fit ({str(e).splitlines()[0][:160]})") from None


def snapshot_int(data: dict, key: str, label: str, lo: int = 0, hi: int = 1 << 62) -> int:
    """``data[key]``, which must be an integer in ``lo..hi``."""
    v = data.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise CheckpointError(f"{label}: '{key}' is {_short(v)}, expected an integer in {lo}..{hi}")
    return v


def snapshot_float(data: dict, key: str, label: str, lo: float = 0.0, hi: float = 1e12) -> float:
    """``data[key]``, which must be a finite real number in ``lo..hi``."""
    v = data.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not (math.isfinite(v) and lo <= v <= hi):
        raise CheckpointError(f"{label}: '{key}' is {_short(v)}, expected a number in {lo:g}..{hi:g}")
    return float(v)


def snapshot_str(data: dict, key: str, label: str, choices: Sequence[str]) -> str:
    """``data[key]``, which must be one of ``choices``."""
    v = data.get(key)
    if v not in choices or not isinstance(v, str):
        raise CheckpointError(f"{label}: '{key}' is {_short(v)}, expected one of {', '.join(choices)}")
    return v
