"""Edit requests -> RigNet targets: what ``--yaw 20 --jaw 10 --expr smile --unit X=V --eyes closed`` asks for.

``EditRequest`` holds a request in the user's units (degrees, preset strengths, face-model unit
values). ``edit_targets`` turns it into a target control vector (P,) physical units, given the
source face's own reading:

* a flag left unset keeps the source's value;
* angles and the jaw are relative to the source's reading (``--absolute``: the value itself);
* ``--expr NAME[:S]`` adds ``S x`` the preset's reading change (``rig.rignet.calibration``) on top of
  the source's expression, eyes and jaw (``--absolute``: on top of the neutral reading instead);
* ``--unit NAME=V`` adds ``slope x V`` to that unit's reading (``--absolute``: ``intercept + slope x V``);
* ``--eyes closed|open``: the eye controls become those of the world's blink / neutral renders;
* an explicit ``--jaw`` wins over a preset's jaw.

Every edited angle is checked against the range the generator draws; unknown or frozen names and
non-finite values are ``InputError`` s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.errors import InputError
from rig.rignet.controls import ControlSpace

EYE_STATES = ("closed", "open")


@dataclass(frozen=True)
class EditRequest:
    """yaw / pitch / roll / jaw in degrees (None: keep); expr: ((preset, strength), ...);
    units: ((unit name, value), ...); eyes: 'closed' | 'open' | None; absolute: see module doc."""

    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    jaw: float | None = None
    expr: tuple[tuple[str, float], ...] = ()
    units: tuple[tuple[str, float], ...] = ()
    eyes: str | None = None
    absolute: bool = False

    def is_empty(self) -> bool:
        return (self.yaw is None and self.pitch is None and self.roll is None and self.jaw is None
                and not self.expr and not self.units and self.eyes is None)

    def describe(self) -> dict:
        d = {k: getattr(self, k) for k in ("yaw", "pitch", "roll", "jaw") if getattr(self, k) is not None}
        if self.expr:
            d["expr"] = [f"{n}:{s:g}" for n, s in self.expr]
        if self.units:
            d["units"] = {n: v for n, v in self.units}
        if self.eyes:
            d["eyes"] = self.eyes
        d["mode"] = "absolute" if self.absolute else "relative"
        return d


def _finite(value: float, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{what}: {value!r} is not a finite number")
    return v


def parse_expr(text: str) -> tuple[str, float]:
    """``"smile"`` -> ("smile", 1.0); ``"smile:0.5"`` -> ("smile", 0.5)."""
    name, _, strength = str(text).partition(":")
    s = _finite(strength, f"--expr {text}") if strength else 1.0
    if not 0 <= s <= 2:
        raise InputError(f"--expr {text}: strength {s:g} outside 0..2")
    return name.strip(), s


def parse_unit(text: str) -> tuple[str, float]:
    """``"mouthSmileLeft=0.4"`` -> ("mouthSmileLeft", 0.4)."""
    name, eq, value = str(text).partition("=")
    if not eq or not name.strip():
        raise InputError(f"--unit {text!r}: expected NAME=VALUE, e.g. mouthSmileLeft=0.4")
    v = _finite(value, f"--unit {text}")
    if not -1 <= v <= 1.5:
        raise InputError(f"--unit {text}: value {v:g} outside -1..1.5 (expression units are 0..1)")
    return name.strip(), v


def _need_calibration(calibration: dict | None, what: str) -> dict:
    if calibration is None:
        raise InputError(f"{what}: this RigNet's labeler reads head pose and jaw only (no expression calibration)")
    return calibration


def edit_targets(space: ControlSpace, calibration: dict | None, source: np.ndarray, req: EditRequest
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(target (P,) float64 physical, edited (P,) bool) for ``req`` applied to the (P,) ``source`` reading."""
    source = np.asarray(source, np.float64)
    if source.shape != (space.size,):
        raise InputError(f"source reading has shape {source.shape}, the control space {space.size}")
    t = source.copy()
    edited = np.zeros(space.size, bool)
    for name in ("yaw", "pitch", "roll"):
        v = getattr(req, name)
        if v is not None:
            k = space.index(name)
            rad = math.radians(_finite(v, f"--{name}"))
            t[k] = rad if req.absolute else source[k] + rad
            edited[k] = True
    expr_groups = np.concatenate([space.group_indices(g) for g in ("jaw", "expression", "eyes")]) \
        if space.has("jaw_x") else np.zeros(0, np.int64)
    if req.expr:
        cal = _need_calibration(calibration, "--expr")
        presets = cal["presets"]
        neutral = np.asarray(presets["neutral"])
        base = neutral if req.absolute else source
        t[expr_groups] = base[expr_groups]
        for name, strength in req.expr:
            if name not in presets:
                raise InputError(f"unknown expression preset '{name}'; choose one of {', '.join(sorted(presets))}")
            t[expr_groups] += strength * (np.asarray(presets[name]) - neutral)[expr_groups]
        edited[expr_groups] = True
    if req.eyes is not None:
        if req.eyes not in EYE_STATES:
            raise InputError(f"--eyes {req.eyes!r}: choose closed or open")
        cal = _need_calibration(calibration, "--eyes")
        eyes = space.group_indices("eyes")
        ref = np.asarray(cal["presets"]["blink" if req.eyes == "closed" else "neutral"])
        t[eyes] = ref[eyes]
        edited[eyes] = True
    for name, value in req.units:
        cal = _need_calibration(calibration, "--unit")
        if name in space.frozen or name in cal.get("frozen", ()):
            raise InputError(f"--unit {name}: the generator never saw this unit vary (its world keeps it at 0)")
        if name not in cal["units"]:
            known = ", ".join(sorted(cal["units"]))
            raise InputError(f"--unit {name}: unknown expression unit; known: {known}")
        k = space.index(name)
        u = cal["units"][name]
        t[k] = u["intercept"] + u["slope"] * value if req.absolute else t[k] + u["slope"] * value
        edited[k] = True
    if req.jaw is not None:
        k = space.index("jaw_x")
        rad = math.radians(_finite(req.jaw, "--jaw"))
        t[k] = rad if req.absolute else source[k] + rad
        edited[k] = True
    angles = np.zeros(space.size, bool)
    angles[np.concatenate([space.group_indices("pose"), space.group_indices("jaw")])] = True
    if (edited & angles).any():  # expression readings shrink and mix; their range is not a hard limit
        space.check_in_range(np.where(edited & angles, t, space.mean)[None], "edit")
    return t, edited
