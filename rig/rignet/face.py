"""A ``Face``: one W+ latent with the identity of its generator and how it was made, and its file.

The face file is a plain-array ``.npz`` (read by ``rig.io.npy.read_npz``), the one format every
command and the Python API read and write:

    format              () str  "rig.face/1"
    ws                  (num_ws, w_dim) float32 W+ latent
    generator_identity  () str  ``rig.stylegan2.identity.generator_identity`` of the generator
    provenance          () str  JSON: e.g. {"seed": 3, "class": "smile", "truncation_psi": 1.0,
                                "noise_mode": "const"} or {"made_by": "rig puppet", "edit": {...}, "parent": {...}}
    control_names       (P,) str, controls (P,) float64   optional: a labeler's reading of G(ws)
    alignment           () str  optional JSON: where the crop lies in its photo (``rig.invert.align.Alignment``)
    tuned_generator     () str  optional: a pivotally tuned copy of the generator (``rig invert --tune``),
                                a file name relative to the face file's folder, inside it; its identity in
    tuned_identity      () str  (the face's ``generator_identity`` stays the original's, the copy's parent)

``--latent`` also takes a bare ``.npy`` of shape (num_ws, w_dim) or (w_dim,) (as ``rig generate
--save-w`` writes), checked against the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rig.errors import InputError
from rig.io.atomic import atomic_path

FACE_FORMAT = "rig.face/1"
_MAX_FACE_BYTES = 64 << 20  # a W+ latent is kilobytes; anything this large is not a face file


@dataclass
class Face:
    """ws: (num_ws, w_dim) float32 tensor; generator_identity: str; provenance: JSON-able dict;
    controls: optional (P,) reading of G(ws) with its ``control_names``."""

    ws: torch.Tensor
    generator_identity: str
    provenance: dict = field(default_factory=dict)
    controls: np.ndarray | None = None
    control_names: tuple[str, ...] = ()
    alignment: dict | None = None
    tuned_generator: str | None = None
    tuned_identity: str | None = None

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise InputError(f"{path}: face files end in .npz")
        arrays = {"format": np.array(FACE_FORMAT), "ws": self.ws.detach().cpu().float().numpy(),
                  "generator_identity": np.array(self.generator_identity),
                  "provenance": np.array(json.dumps(self.provenance))}
        if self.controls is not None:
            arrays["controls"] = np.asarray(self.controls, np.float64)
            arrays["control_names"] = np.array(list(self.control_names))
        if self.alignment is not None:
            arrays["alignment"] = np.array(json.dumps(self.alignment))
        if self.tuned_generator is not None:
            check_relative_name(self.tuned_generator, str(path))
            arrays["tuned_generator"] = np.array(self.tuned_generator)
            arrays["tuned_identity"] = np.array(self.tuned_identity or "")
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)


def _str(z: dict, key: str, path: Path) -> str:
    a = z[key]
    if a.dtype.kind != "U" or a.ndim != 0:
        raise InputError(f"{path}: '{key}' must be a string")
    return str(a)


def _json(z: dict, key: str, path: Path):
    try:
        return json.loads(_str(z, key, path))
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nesting thousands deep
        raise InputError(f"{path}: '{key}' is not valid JSON ({type(e).__name__})") from None


def load_face(path: str | os.PathLike, num_ws: int, w_dim: int) -> Face:
    """Read a face file, checking its latent's shape against the network's (num_ws, w_dim)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: face file not found")
    if path.stat().st_size > _MAX_FACE_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes is far too large for a face file")
    from rig.errors import CheckpointError
    from rig.io.npy import read_npz

    try:  # rig's own zip / .npy reader: sizes, dtypes and byte counts checked before allocation
        z = read_npz(path, max_bytes=_MAX_FACE_BYTES, allow_str=True)
    except CheckpointError as e:
        raise InputError(str(e)) from None
    if "format" not in z or "ws" not in z:
        raise InputError(f"{path}: not a rig face file (keys {', '.join(sorted(z))[:200]})")
    if _str(z, "format", path) != FACE_FORMAT:
        raise InputError(f"{path}: face format {_str(z, 'format', path)[:80]!r}, rig reads {FACE_FORMAT!r}")
    ws = z["ws"]
    ident = _str(z, "generator_identity", path) if "generator_identity" in z else ""
    prov = _json(z, "provenance", path) if "provenance" in z else {}
    controls = z["controls"] if "controls" in z else None
    if controls is not None:
        if controls.dtype.kind not in "biuf":
            raise InputError(f"{path}: 'controls' must be a numeric array")
        controls = controls.astype(np.float64)
    names = ()
    if "control_names" in z:
        if z["control_names"].dtype.kind != "U" and z["control_names"].size:  # np.array([]) is float64
            raise InputError(f"{path}: 'control_names' must be an array of strings")
        names = tuple(str(n) for n in z["control_names"].reshape(-1))
    alignment = _json(z, "alignment", path) if "alignment" in z else None
    tuned = _str(z, "tuned_generator", path) if "tuned_generator" in z else None
    tuned_ident = _str(z, "tuned_identity", path) if "tuned_identity" in z else None
    if not isinstance(prov, dict):
        raise InputError(f"{path}: provenance must be a JSON object")
    if alignment is not None and not isinstance(alignment, dict):
        raise InputError(f"{path}: alignment must be a JSON object")
    if tuned is not None:
        check_relative_name(tuned, str(path))
    return Face(check_latent(ws, num_ws, w_dim, str(path)), ident, prov, controls, names, alignment, tuned, tuned_ident)


def check_relative_name(name: str, source: str) -> None:
    """A tuned generator is named by a plain file name in the face file's own folder; any path
    (absolute, with a folder, '..') is refused, so a face file cannot point rig at another file."""
    if not name or name != Path(name).name or name in (".", "..") or "\\" in name or ":" in name:
        raise InputError(f"{source}: tuned_generator {name!r} must be a file name beside the face file; refused")
    if not name.endswith(".safetensors"):
        raise InputError(f"{source}: tuned_generator {name!r} must be a rig .safetensors network; refused")


def tuned_generator_path(face: Face, face_path: str | os.PathLike) -> Path | None:
    """Where a face's tuned generator lies (beside ``face_path``), or None for a face without one."""
    if face.tuned_generator is None:
        return None
    check_relative_name(face.tuned_generator, str(face_path))
    return Path(face_path).resolve().parent / face.tuned_generator


def check_latent(ws: np.ndarray, num_ws: int, w_dim: int, source: str) -> torch.Tensor:
    """(num_ws, w_dim) float32 tensor from an array of that shape or a single (w_dim,) w (broadcast)."""
    ws = np.asarray(ws)
    if not np.issubdtype(ws.dtype, np.floating):
        raise InputError(f"{source}: latent has dtype {ws.dtype}, expected floats")
    if ws.shape == (w_dim,):
        ws = np.broadcast_to(ws, (num_ws, w_dim))
    if ws.shape != (num_ws, w_dim):
        raise InputError(f"{source}: latent of shape {ws.shape}; this network takes ({num_ws}, {w_dim}) or ({w_dim},)")
    from rig.io.values import check_values
    from rig.limits import LATENT_ABS

    check_values(ws, source, LATENT_ABS, "latent", "trained mapping networks stay within +-100")
    return torch.from_numpy(np.array(ws, np.float32))


def load_latent_npy(path: str | os.PathLike, num_ws: int, w_dim: int) -> torch.Tensor:
    """A bare ``.npy`` latent (num_ws, w_dim) or (w_dim,), checked; also accepts (1, num_ws, w_dim)."""
    path = Path(path)
    try:
        ws = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: latent file not found") from None
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: not a plain .npy array ({e})") from None
    if ws.ndim == 3 and ws.shape[0] == 1:
        ws = ws[0]
    return check_latent(ws, num_ws, w_dim, str(path))
