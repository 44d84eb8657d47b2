"""``RigParams``: the one record of face-rig parameters, and its ``.npz`` / ``.json`` file format.

Units: axis-angle rotations in radians, translation in metres. A batch of B parameter sets is
also how a per-frame sequence of T frames travels (B = T).

File format (``.npz`` written without pickle, or hand-written ``.json``), keys exactly the field
names below. Missing keys mean zeros; ``shape`` / ``expression`` arrays shorter than the model's
counts are zero-padded, longer ones are an ``InputError`` naming the file and key. A sequence file
gives every array a leading frame axis (T, ...); ``shape`` may be given once (no frame axis) and
is then shared by all frames.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from rig.errors import InputError, ShapeError
from rig.io.atomic import atomic_path, write_text_atomic
from rig.io.values import check_values
from rig.limits import PARAM_ABS

if TYPE_CHECKING:
    from rig.face_model.model import FaceModel

# Width of the fixed-size fields; shape / expression widths come from the model.
POSE_WIDTHS = {"global_pose": 3, "neck_pose": 3, "jaw_pose": 3, "eye_pose": 6, "translation": 3}
FIELD_NAMES = ("shape", "expression", "global_pose", "neck_pose", "jaw_pose", "eye_pose", "translation")


@dataclass(eq=False)  # tensor fields: an elementwise == would be ambiguous
class RigParams:
    """A batch of face-rig parameters (all float tensors on one device, leading batch axis B).

    Attributes:
        shape: (B, n_shape) identity coefficients.
        expression: (B, n_expr) expression coefficients.
        global_pose: (B, 3) axis-angle of the whole head (root joint), radians.
        neck_pose: (B, 3) axis-angle of the neck joint, radians.
        jaw_pose: (B, 3) axis-angle of the jaw; +x opens the mouth, radians.
        eye_pose: (B, 6) axis-angle of the left eye then the right eye, radians.
        translation: (B, 3) added to every vertex, joint and landmark, metres.
    """

    shape: torch.Tensor
    expression: torch.Tensor
    global_pose: torch.Tensor
    neck_pose: torch.Tensor
    jaw_pose: torch.Tensor
    eye_pose: torch.Tensor
    translation: torch.Tensor

    def __post_init__(self) -> None:
        B = None
        for name in FIELD_NAMES:
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or t.ndim != 2:
                raise ShapeError(f"RigParams.{name}: expected a (B, n) tensor, got {getattr(t, 'shape', type(t))}")
            if name in POSE_WIDTHS and t.shape[1] != POSE_WIDTHS[name]:
                raise ShapeError(f"RigParams.{name}: expected width {POSE_WIDTHS[name]}, got {tuple(t.shape)}")
            if B is None:
                B = t.shape[0]
            elif t.shape[0] != B:
                raise ShapeError(f"RigParams.{name}: batch {t.shape[0]} differs from shape's batch {B}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def zeros(cls, batch: int, n_shape: int, n_expr: int, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None) -> "RigParams":
        """All-zero parameters: the neutral template, unposed, at the origin."""
        def z(n: int) -> torch.Tensor:
            return torch.zeros((batch, n), dtype=dtype, device=device)
        return cls(z(n_shape), z(n_expr), *(z(w) for w in POSE_WIDTHS.values()))

    @classmethod
    def for_model(cls, face_model: "FaceModel", batch: int = 1) -> "RigParams":
        """Zeros sized, typed and placed for ``face_model``."""
        return cls.zeros(batch, face_model.n_shape, face_model.n_expression, face_model.dtype, face_model.device)

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], n_shape: int, n_expr: int, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None, source: str = "parameters") -> "RigParams":
        """Build from a dict of array-likes with the file format's rules (see module docstring).

        Unknown keys raise ``InputError``; so do arrays wider than the model's counts.
        """
        unknown = sorted(set(arrays) - set(FIELD_NAMES))
        if unknown:
            raise InputError(f"{source}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(FIELD_NAMES)}")
        widths = {"shape": n_shape, "expression": n_expr, **POSE_WIDTHS}
        parsed: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            try:
                a = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"{source}: key '{name}' is not a numeric array") from None
            if a.ndim == 0 or a.ndim > 2:
                raise InputError(f"{source}: key '{name}' has shape {a.shape}; expected ({widths[name]},) or (T, {widths[name]})")
            check_values(a, source, PARAM_ABS, name, "the most any rig parameter may be")
            if a.shape[-1] > widths[name]:
                raise InputError(f"{source}: key '{name}' has {a.shape[-1]} values, the model takes at most {widths[name]}")
            if name in POSE_WIDTHS and a.shape[-1] != widths[name]:
                raise InputError(f"{source}: key '{name}' has {a.shape[-1]} values, expected {widths[name]}")
            parsed[name] = a
        frame_counts = {a.shape[0] for n, a in parsed.items() if a.ndim == 2 and not (n == "shape" and a.shape[0] == 1)}
        if len(frame_counts) > 1:
            raise InputError(f"{source}: keys disagree on the number of frames: {sorted(frame_counts)}")
        T = frame_counts.pop() if frame_counts else 1
        fields = {}
        for name in FIELD_NAMES:
            out = np.zeros((T, widths[name]))
            if name in parsed:
                a = parsed[name]
                a = a[None] if a.ndim == 1 else a
                out[:, : a.shape[1]] = a  # broadcasts a once-given shape over all frames
            fields[name] = torch.as_tensor(out, dtype=dtype, device=device)
        return cls(**fields)

    # ------------------------------------------------------------------ batch handling

    @property
    def batch_size(self) -> int:
        return int(self.shape.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shape.shape[1])

    @property
    def n_expression(self) -> int:
        return int(self.expression.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.shape.dtype

    @property
    def device(self) -> torch.device:
        return self.shape.device

    def __len__(self) -> int:
        return self.batch_size

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in FIELD_NAMES}

    def map(self, fn) -> "RigParams":
        """Apply ``fn`` to every field tensor and return a new record."""
        return RigParams(**{name: fn(t) for name, t in self.as_dict().items()})

    def to(self, *args: Any, **kwargs: Any) -> "RigParams":
        """Like ``torch.Tensor.to`` (device and/or dtype), for every field."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def detach(self) -> "RigParams":
        return self.map(torch.Tensor.detach)

    def clone(self) -> "RigParams":
        return self.map(torch.Tensor.clone)

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "RigParams":
        """Select frames; an integer index keeps the batch axis (batch of 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return self.map(lambda t: t[index])

    @staticmethod
    def cat(items: Sequence["RigParams"]) -> "RigParams":
        """Concatenate batches / sequences along the batch axis (widths must agree)."""
        if not items:
            raise ShapeError("RigParams.cat: nothing to concatenate")
        return RigParams(**{name: torch.cat([getattr(p, name) for p in items], 0) for name in FIELD_NAMES})

    def expand(self, batch: int) -> "RigParams":
        """Repeat a batch-of-1 record ``batch`` times."""
        if self.batch_size != 1:
            raise ShapeError(f"RigParams.expand: needs a batch of 1, got {self.batch_size}")
        return self.map(lambda t: t.expand(batch, -1).clone())

    def padded(self, n_shape: int, n_expr: int) -> "RigParams":
        """Zero-pad shape / expression to the given widths (never truncates)."""
        def pad(t: torch.Tensor, n: int, name: str) -> torch.Tensor:
            if t.shape[1] > n:
                raise ShapeError(f"RigParams.{name}: {t.shape[1]} values, cannot pad down to {n}")
            return torch.nn.functional.pad(t, (0, n - t.shape[1]))
        return dataclasses.replace(self, shape=pad(self.shape, n_shape, "shape"),
                                   expression=pad(self.expression, n_expr, "expression"))

    def full_pose(self) -> torch.Tensor:
        """(B, 5, 3) axis-angle per FLAME joint: global, neck, jaw, left eye, right eye."""
        return torch.cat([self.global_pose, self.neck_pose, self.jaw_pose, self.eye_pose], 1).reshape(-1, 5, 3)

    # ------------------------------------------------------------------ files

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Float64 arrays keyed by field name; a batch of 1 drops its frame axis."""
        out = {}
        for name, t in self.as_dict().items():
            a = t.detach().cpu().to(torch.float64).numpy()
            out[name] = a[0] if a.shape[0] == 1 else a
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write ``.npz`` (no pickle) or ``.json`` atomically, chosen by the suffix."""
        path = Path(path)
        arrays = self.to_numpy()
        if path.suffix.lower() == ".json":
            write_text_atomic(path, json.dumps({k: v.tolist() for k, v in arrays.items()}, indent=1) + "\n")
        elif path.suffix.lower() == ".npz":
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, **arrays)
        else:
            raise InputError(f"{path}: parameter files must end in .npz or .json")

    @classmethod
    def load(cls, path: str | os.PathLike, n_shape: int, n_expr: int, dtype: torch.dtype = torch.float32,
             device: torch.device | str | None = None) -> "RigParams":
        """Read a ``.npz`` / ``.json`` parameter file for a model with ``n_shape`` / ``n_expr`` components."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: parameter file not found")
        suffix = path.suffix.lower()
        if suffix == ".json":
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"{path}: not valid JSON ({e})") from None
            except (RecursionError, MemoryError, OSError) as e:  # nesting 100,000 deep, unreadable
                raise InputError(f"{path}: not a readable JSON file ({type(e).__name__})") from None
            if not isinstance(raw, dict):
                raise InputError(f"{path}: expected a JSON object with keys {', '.join(FIELD_NAMES)}")
        elif suffix == ".npz":
            from rig.errors import CheckpointError
            from rig.io.npy import read_npz

            try:  # rig's own zip / .npy reader: sizes checked before allocation, every failure named
                raw = read_npz(path)
            except CheckpointError as e:
                raise InputError(str(e)) from None
        else:
            raise InputError(f"{path}: parameter files must end in .npz or .json")
        return cls.from_arrays(raw, n_shape, n_expr, dtype, device, source=str(path))


# ---------------------------------------------------------------------- CLI helper


def euler_to_axis_angle(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation R = R_y(yaw) @ R_x(pitch) @ R_z(roll) as an axis-angle vector (radians in, radians out).

    Signs (right-hand rule in the model frame: x to the subject's left, y up, z out of the face):
    +yaw turns the face towards +x (the subject's left); +pitch tips the face down (chin towards
    the chest); +roll tilts the top of the head towards -x (the subject's right shoulder).
    """
    from scipy.spatial.transform import Rotation

    R = Rotation.from_euler("YXZ", [yaw, pitch, roll])  # intrinsic: R_y @ R_x @ R_z
    return R.as_rotvec()


def split_head_rotation(ypr: np.ndarray, neck_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(root, neck) axis-angles (radians) whose composition R(root) @ R(neck) is the head rotation of
    yaw / pitch / roll ``ypr`` (radians, ``euler_to_axis_angle``), the neck carrying ``neck_share`` of the angles."""
    ypr = np.asarray(ypr, np.float64)
    neck = euler_to_axis_angle(*(ypr * neck_share))
    # root @ neck = head  =>  root = head @ neck^-1
    return compose_axis_angle(euler_to_axis_angle(*ypr), -neck), neck


def compose_axis_angle(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Axis-angle of R(outer) @ R(inner) for (..., 3) arrays."""
    from scipy.spatial.transform import Rotation

    return (Rotation.from_rotvec(outer) * Rotation.from_rotvec(inner)).as_rotvec()


def params_from_flags(
    face_model: "FaceModel",
    params_file: str | os.PathLike | None = None,
    expr: str | None = None,
    yaw_deg: float = 0.0,
    pitch_deg: float = 0.0,
    roll_deg: float = 0.0,
    jaw_deg: float | None = None,
) -> RigParams:
    """The parameters the ``--params/--expr/--yaw/--pitch/--roll/--jaw`` flags describe.

    Starts from ``params_file`` (or zeros, batch 1; a sequence file gives a batch of T frames)
    and composes the flags on top, identically for every frame:
    - ``expr``: the preset's expression coefficients are added to the file's, and its jaw
      opening composed onto the file's jaw rotation (``rig.face_model.presets``);
    - yaw / pitch / roll (degrees): R_y(yaw) R_x(pitch) R_z(roll) is applied on top of the file's
      global rotation (see ``euler_to_axis_angle`` for the signs);
    - ``jaw_deg``: the jaw rotation becomes exactly ``jaw_deg`` about the jaw joint's x axis
      (+ opens the mouth), overriding the file's and the preset's jaw.
    Returns a record on the model's device and dtype.
    """
    if params_file is not None:
        params = RigParams.load(params_file, face_model.n_shape, face_model.n_expression, torch.float64)
    else:
        params = RigParams.zeros(1, face_model.n_shape, face_model.n_expression, torch.float64)
    expression = params.expression
    jaw = params.jaw_pose.numpy()
    if expr is not None:
        from rig.face_model.presets import expression_preset

        preset_expr, preset_jaw = expression_preset(face_model, expr)
        expression = expression + preset_expr.detach().cpu().to(torch.float64)[None]
        jaw = compose_axis_angle(preset_jaw.detach().cpu().double().numpy()[None].repeat(len(jaw), 0), jaw)
    if jaw_deg is not None:
        jaw = np.tile([math.radians(jaw_deg), 0.0, 0.0], (len(jaw), 1))
    global_pose = params.global_pose.numpy()
    if yaw_deg or pitch_deg or roll_deg:
        head = euler_to_axis_angle(math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg))
        global_pose = compose_axis_angle(np.tile(head, (len(global_pose), 1)), global_pose)
    out = dataclasses.replace(params, expression=expression, jaw_pose=torch.as_tensor(np.asarray(jaw, np.float64)),
                              global_pose=torch.as_tensor(np.asarray(global_pose, np.float64)))
    return out.to(device=face_model.device, dtype=face_model.dtype)
