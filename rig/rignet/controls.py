"""The control space RigNet works in: which rig parameters a labeler reads, in what order and units.

A *control vector* (B, P) holds one labeler's reading of a face, in physical units: expression
coefficients, the jaw's axis-angle (radians) and the head's yaw / pitch / roll relative to the camera
(radians; ``rig.face_model.params.euler_to_axis_angle`` gives the signs). For the default world's
encoder (``rig.instruments.encoder``) P = E + 6 in the encoder's own order
``[expression (E), jaw_pose (3), head_ypr (3)]``.

``ControlSpace`` names the entries, splits them into the *groups* an edit moves together (``pose``,
``jaw``, ``expression``, ``eyes``) and carries the standardisation (``mean`` / ``std``) that the
networks see: normalised controls are about unit-variance on the generator's samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from rig.errors import InputError, ShapeError

GROUPS = ("pose", "jaw", "expression", "eyes")
# Expression units that belong to the eyes group (lids, squint, widen); everything else is face expression.
_EYE_PREFIXES = ("eyeBlink", "eyeSquint", "eyeWide")
POSE_NAMES = ("yaw", "pitch", "roll")


def encoder_control_names(expression_names: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the encoder's control vector: the expression units, ``jaw_x/y/z``, ``yaw/pitch/roll``."""
    return tuple(expression_names) + ("jaw_x", "jaw_y", "jaw_z") + POSE_NAMES


def group_of(name: str) -> str:
    """The edit group of control ``name``."""
    if name in POSE_NAMES:
        return "pose"
    if name.startswith("jaw_"):
        return "jaw"
    if name.startswith(_EYE_PREFIXES):
        return "eyes"
    return "expression"


@dataclass(frozen=True)
class ControlSpace:
    """P named controls with their groups, standardisation and the range the generator draws.

    names: (P,) control names. mean, std: (P,) float64, physical units (radians, coefficients).
    frozen: names the generator never varies (e.g. gaze, jawOpen, tongueOut in the default world);
        edits may not ask for them and the networks neither read nor steer them.
    low, high: (P,) the range of the generator's labelled samples (0.5 / 99.5 percentiles); edits
        beyond it are refused with the range in the message.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    frozen: tuple[str, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        P = len(self.names)
        for key in ("mean", "std", "low", "high"):
            v = getattr(self, key)
            if v is not None:
                v = np.asarray(v, np.float64)
                if v.shape != (P,):
                    raise ShapeError(f"ControlSpace.{key}: expected ({P},), got {v.shape}")
                object.__setattr__(self, key, v)
        if np.any(self.std <= 0):
            raise ShapeError("ControlSpace.std must be positive")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        if name not in self._index:
            raise InputError(f"unknown control '{name}'; known: {', '.join(n for n in self.names if n not in self.frozen)}")
        return self._index[name]

    def has(self, name: str) -> bool:
        return name in self._index

    def group_indices(self, group: str) -> np.ndarray:
        """Indices of the (non-frozen) controls in ``group``."""
        if group not in GROUPS:
            raise InputError(f"unknown control group '{group}'; choose one of {', '.join(GROUPS)}")
        return np.array([i for i, n in enumerate(self.names) if group_of(n) == group and n not in self.frozen], np.int64)

    def group_mask(self, groups) -> torch.Tensor:
        """(P,) bool tensor: True for the non-frozen controls of any of ``groups``."""
        m = torch.zeros(self.size, dtype=torch.bool)
        for g in groups:
            m[torch.from_numpy(self.group_indices(g))] = True
        return m

    @property
    def active(self) -> torch.Tensor:
        """(P,) bool: controls the networks read and steer (everything not frozen)."""
        return self.group_mask(GROUPS)

    def groups_present(self) -> tuple[str, ...]:
        return tuple(g for g in GROUPS if len(self.group_indices(g)))

    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        """(B, P) physical -> (B, P) standardised."""
        if p.ndim != 2 or p.shape[1] != self.size:
            raise ShapeError(f"controls: expected (B, {self.size}), got {tuple(p.shape)}")
        mean = torch.as_tensor(self.mean, dtype=p.dtype, device=p.device)
        std = torch.as_tensor(self.std, dtype=p.dtype, device=p.device)
        return (p - mean) / std

    def denormalise(self, q: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=q.dtype, device=q.device)
        std = torch.as_tensor(self.std, dtype=q.dtype, device=q.device)
        return q * std + mean

    def check_in_range(self, p: np.ndarray, what: str = "target") -> None:
        """Raise ``InputError`` naming the first control of (B, P) ``p`` beyond the generator's range."""
        if self.low is None or self.high is None:
            return
        p = np.atleast_2d(np.asarray(p, np.float64))
        if not np.all(np.isfinite(p)):
            raise InputError(f"{what}: NaN or inf in the requested controls")
        for i, name in enumerate(self.names):
            if name in self.frozen:
                continue
            lo, hi = self.low[i], self.high[i]
            # Angles get a little slack: a turn to the edge of the range is a fair request.
            slack = math.radians(2.0) if group_of(name) in ("pose", "jaw") else 0.05
            bad = (p[:, i] < lo - slack) | (p[:, i] > hi + slack)
            if bad.any():
                v = p[bad, i][0]
                if group_of(name) in ("pose", "jaw"):
                    raise InputError(f"{what}: {name} {math.degrees(v):.1f} deg is beyond what this generator draws "
                                     f"({math.degrees(lo):.1f} .. {math.degrees(hi):.1f} deg in its labelled samples)")
                raise InputError(f"{what}: {name} {v:.2f} is beyond what this generator draws "
                                 f"({lo:.2f} .. {hi:.2f} in its labelled samples)")

    # ---------------------------------------------------------------- file form

    def to_json(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "frozen": list(self.frozen),
                "low": None if self.low is None else self.low.tolist(),
                "high": None if self.high is None else self.high.tolist()}

    @classmethod
    def from_json(cls, d: dict, source: str = "control space") -> "ControlSpace":
        try:
            return cls(tuple(str(n) for n in d["names"]), np.asarray(d["mean"], np.float64),
                       np.asarray(d["std"], np.float64), tuple(str(n) for n in d.get("frozen", ())),
                       None if d.get("low") is None else np.asarray(d["low"], np.float64),
                       None if d.get("high") is None else np.asarray(d["high"], np.float64))
        except (KeyError, TypeError, ValueError, ShapeError) as e:
            raise InputError(f"{source}: malformed control space ({e})") from None


def space_from_readings(names: tuple[str, ...], readings: np.ndarray, frozen: tuple[str, ...] = ()) -> ControlSpace:
    """A ``ControlSpace`` whose standardisation and range are those of (N, P) ``readings``."""
    r = np.asarray(readings, np.float64)
    if r.ndim != 2 or r.shape[1] != len(names) or len(r) < 2:
        raise ShapeError(f"space_from_readings: expected (N >= 2, {len(names)}) readings, got {r.shape}")
    std = np.maximum(r.std(0), 1e-4)
    return ControlSpace(tuple(names), r.mean(0), std, tuple(frozen),
                        np.percentile(r, 0.5, axis=0), np.percentile(r, 99.5, axis=0))
