"""Expression presets (smile, surprise, blink, ...) that work on any FLAME-layout model.

Real FLAME's expression components have no names, so a preset cannot be "set component 7 to 1".
Instead each preset is a set of target displacements of the 68 iBUG landmarks, in units of the
inter-ocular distance (outer eye corners 36 / 45) and in the head-fixed model frame (y up, z out of
the face), and is solved onto the model's expression coefficients plus a jaw opening angle by
regularised (Tikhonov) least squares:

    min_{e, a}  sum_i w_i |L_i(e, a) - L_i(0, 0) - IOD * d_i|^2 + lam_e |e|^2 + lam_a a^2

where ``L(e, a)`` are the landmarks of the neutral-identity head with expression ``e`` and the jaw
rotated by ``a`` about its x axis. For a fixed jaw angle the landmarks are affine in ``e``; the jaw
makes the problem mildly non-linear, so a few Gauss-Newton steps are taken, each with a Jacobian
from one batched forward pass of a landmark-only submodel (exact unit differences in ``e``, a
central difference in ``a``) and a bounded linear least-squares solve. The regularisers are scaled
to the Jacobian's own magnitude so the same settings fit any model.

Horizontal targets are given as "outward" (away from the face's midline) so that a preset means
the same on every model: the side of each landmark is read from the model's own neutral landmarks.
Models whose expression components are named (like the default head's ARKit units) are treated as
activation units bounded to [0, 1] unless their metadata sets ``expression_range``.

Results are cached per model instance in ``FaceModel.cache``.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from rig.errors import InputError
from rig.face_model.params import RigParams

N_LANDMARKS = 68
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 45, 36

# iBUG-68 mirror pairs (subject's right <-> subject's left); midline points map to themselves.
_MIRROR_PAIRS = ([(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
                 + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
                 + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)])


def mirror_index() -> np.ndarray:
    """(68,) int64: the iBUG index of each landmark's mirror image."""
    m = np.arange(N_LANDMARKS)
    for a, b in _MIRROR_PAIRS:
        m[a], m[b] = b, a
    return m


FREE = float("nan")  # a target component the solve leaves free (weight 0)

# Each symmetric preset lists (outward, up, forward) displacements, in IOD units, of landmarks on
# the subject's LEFT side (+x) and on the midline; the right side is mirrored. NaN = free.
# Landmarks not listed are asked to stay still (with a lower weight).
_SYMMETRIC_TARGETS: Mapping[str, Mapping[int, tuple[float, float, float]]] = types.MappingProxyType({
    "neutral": {},
    "smile": {
        54: (0.12, 0.13, -0.05), 64: (0.09, 0.10, -0.04), 53: (0.05, 0.05, 0.0), 52: (0.02, 0.025, 0.0),
        51: (0.0, 0.015, 0.0), 63: (0.03, 0.03, 0.0), 55: (0.06, 0.04, 0.0), 56: (0.025, 0.015, 0.0),
        65: (0.04, 0.03, 0.0), 46: (0.0, 0.02, 0.0), 47: (0.0, 0.02, 0.0), 35: (0.01, 0.01, 0.0),
    },
    "surprise": {
        22: (0.0, 0.10, 0.0), 23: (0.0, 0.11, 0.0), 24: (0.0, 0.12, 0.0), 25: (0.0, 0.11, 0.0), 26: (0.0, 0.09, 0.0),
        43: (0.0, 0.03, 0.0), 44: (0.0, 0.03, 0.0), 51: (0.0, 0.02, 0.0),
        8: (0.0, -0.25, FREE), 9: (0.0, -0.22, FREE), 10: (0.0, -0.15, FREE), 11: (0.0, -0.08, FREE),
        12: (0.0, FREE, FREE), 13: (0.0, FREE, FREE), 57: (0.0, -0.25, FREE), 56: (0.0, -0.23, FREE), 55: (-0.02, -0.18, FREE), 54: (-0.03, -0.10, FREE),
        66: (0.0, -0.25, FREE), 65: (0.0, -0.22, FREE), 64: (-0.03, -0.10, FREE),
    },
    "anger": {
        22: (-0.04, -0.07, 0.0), 23: (-0.02, -0.06, 0.0), 24: (0.0, -0.04, 0.0), 25: (0.0, -0.02, 0.0),
        43: (0.0, 0.015, 0.0), 44: (0.0, 0.015, 0.0), 46: (0.0, 0.02, 0.0), 47: (0.0, 0.02, 0.0),
        54: (-0.02, -0.02, 0.0), 64: (-0.015, -0.01, 0.0), 51: (0.0, -0.01, 0.0), 57: (0.0, 0.02, 0.0),
        35: (0.015, 0.01, 0.0),
    },
    "sadness": {
        22: (0.0, 0.07, 0.0), 23: (0.0, 0.04, 0.0), 24: (0.0, 0.01, 0.0), 25: (0.0, -0.01, 0.0), 26: (0.0, -0.03, 0.0),
        43: (0.0, -0.02, 0.0), 44: (0.0, -0.02, 0.0),
        54: (-0.01, -0.07, 0.0), 64: (0.0, -0.05, 0.0), 55: (0.0, -0.04, 0.0), 57: (0.0, 0.02, 0.02),
    },
    "disgust": {
        51: (0.0, 0.07, 0.0), 52: (0.0, 0.07, 0.0), 53: (0.0, 0.05, 0.0), 62: (0.0, 0.06, 0.0), 63: (0.0, 0.06, 0.0),
        35: (0.01, 0.04, 0.0), 34: (0.0, 0.035, 0.0), 33: (0.0, 0.02, 0.0),
        22: (-0.01, -0.04, 0.0), 23: (-0.01, -0.04, 0.0), 24: (0.0, -0.03, 0.0),
        46: (0.0, 0.025, 0.0), 47: (0.0, 0.025, 0.0), 54: (0.0, -0.02, 0.0), 57: (0.0, 0.02, 0.02),
    },
    "fear": {
        22: (-0.02, 0.10, 0.0), 23: (0.0, 0.09, 0.0), 24: (0.0, 0.07, 0.0), 25: (0.0, 0.05, 0.0), 26: (0.0, 0.03, 0.0),
        43: (0.0, 0.04, 0.0), 44: (0.0, 0.04, 0.0),
        54: (0.07, -0.03, 0.0), 64: (0.05, -0.02, 0.0), 57: (0.0, -0.08, FREE), 66: (0.0, -0.08, FREE), 8: (0.0, -0.06, FREE),
        9: (0.0, FREE, FREE), 10: (0.0, FREE, FREE), 11: (0.0, FREE, FREE), 12: (0.0, FREE, FREE),
    },
    "jaw_open": {
        8: (0.0, -0.35, FREE), 9: (0.0, -0.31, FREE), 10: (0.0, -0.22, FREE), 11: (0.0, -0.12, FREE),
        12: (0.0, FREE, FREE), 13: (0.0, FREE, FREE),
        57: (0.0, -0.35, FREE), 56: (0.0, -0.32, FREE), 55: (0.0, -0.25, FREE), 54: (-0.02, -0.12, FREE),
        66: (0.0, -0.35, FREE), 65: (0.0, -0.3, FREE), 64: (-0.02, -0.12, FREE),
    },
    "pucker": {
        54: (-0.10, 0.0, 0.04), 64: (-0.07, 0.0, 0.04), 53: (-0.05, 0.0, 0.05), 55: (-0.05, 0.0, 0.05),
        51: (0.0, 0.0, 0.06), 57: (0.0, 0.0, 0.06), 62: (0.0, 0.0, 0.05), 66: (0.0, 0.0, 0.05),
    },
})

# Eyelid pairs (upper, lower) per eye: for blinks the target closes each gap on the model's own geometry.
_RIGHT_LIDS = ((37, 41), (38, 40))
_LEFT_LIDS = ((44, 46), (43, 47))
_UPPER_LID_SHARE = 0.8  # the upper lid travels most of the way, as in a real blink


@dataclass(frozen=True)
class PresetTarget:
    """What a preset asks of the landmarks, in the model frame.

    displacement: (68, 3) float64, in IOD units (already mirrored and resolved to x / y / z).
    weight: (68, 3) float64, 0 for free components.
    """

    displacement: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class PresetSolverConfig:
    """Settings of the landmark-to-expression solve.

    expression_reg: Tikhonov weight on the expression coefficients, relative to the mean squared
        column norm of their landmark Jacobian (scale-free across models).
    jaw_reg: the same for the jaw angle.
    still_weight: weight of landmarks a preset does not mention (asked to stay put).
    gauss_newton_steps: iterations (the problem is linear except for the jaw).
    max_jaw_deg: upper bound of the jaw opening; the jaw never closes past 0.
    excluded_name_prefixes: named expression units never used by presets (held at 0): ARKit's
        eyeLook* units are gaze, which ``eye_pose`` owns; tongueOut is not an expression.
    """

    expression_reg: float = 0.1
    jaw_reg: float = 0.001
    still_weight: float = 0.3
    gauss_newton_steps: int = 4
    max_jaw_deg: float = 30.0
    excluded_name_prefixes: tuple[str, ...] = ("eyeLook", "tongue")


def preset_names() -> tuple[str, ...]:
    return tuple(_SYMMETRIC_TARGETS) + ("blink", "wink_left", "wink_right")


def _lid_targets(neutral_iod: np.ndarray, lids: tuple[tuple[int, int], ...], disp: np.ndarray) -> None:
    for upper, lower in lids:
        gap = neutral_iod[upper, 1] - neutral_iod[lower, 1]
        disp[upper, 1] = -_UPPER_LID_SHARE * gap
        disp[lower, 1] = (1.0 - _UPPER_LID_SHARE) * gap


def preset_target(name: str, neutral_landmarks: np.ndarray, still_weight: float = 0.3) -> PresetTarget:
    """Resolve preset ``name`` on a model whose neutral landmarks are ``neutral_landmarks`` (68, 3) metres."""
    if name not in preset_names():
        raise InputError(f"unknown expression preset '{name}'; choose one of {', '.join(preset_names())}")
    iod = float(np.linalg.norm(neutral_landmarks[LEFT_EYE_OUTER] - neutral_landmarks[RIGHT_EYE_OUTER]))
    disp = np.zeros((N_LANDMARKS, 3))
    weight = np.full((N_LANDMARKS, 3), still_weight)
    if name in _SYMMETRIC_TARGETS:
        mirror = mirror_index()
        mid_x = 0.5 * (neutral_landmarks[LEFT_EYE_OUTER, 0] + neutral_landmarks[RIGHT_EYE_OUTER, 0])
        for idx, (out, up, fwd) in _SYMMETRIC_TARGETS[name].items():
            for i in {idx, int(mirror[idx])}:
                side = np.sign(neutral_landmarks[i, 0] - mid_x)
                disp[i] = (out * side if not math.isnan(out) else 0.0, up, fwd)
                weight[i] = [0.0 if math.isnan(c) else 1.0 for c in (out, up, fwd)]
        disp = np.nan_to_num(disp)
    else:
        neutral_iod = neutral_landmarks / iod
        lids = {"blink": _RIGHT_LIDS + _LEFT_LIDS, "wink_left": _LEFT_LIDS, "wink_right": _RIGHT_LIDS}[name]
        _lid_targets(neutral_iod, lids, disp)
        for pair in lids:
            weight[list(pair), 1] = 1.0
    return PresetTarget(disp, weight)


# ------------------------------------------------------------------------------------- the solve


def expression_bounds(face_model) -> tuple[float, float]:
    """(low, high) for every expression coefficient: metadata ``expression_range``, else [0, 1] for
    named (activation-unit) bases and unbounded for unnamed (PCA) bases like FLAME's."""
    rng = face_model.data.metadata.get("expression_range")
    if rng is not None:
        return float(rng[0]), float(rng[1])
    return (0.0, 1.0) if face_model.expression_names else (-np.inf, np.inf)


def landmark_submodel(face_model):
    """A small ``FaceModel`` that poses only what the landmarks need, with identical results.

    It keeps the triangles the landmark embedding refers to and adds the J joints as J extra
    "virtual vertices" whose template / blendshapes are the regressed ones (J_regressor @ ...),
    so its identity joint regressor reproduces the full model's joints exactly. Posing it costs a
    few hundred vertices instead of thousands. Always float64 (the solve differentiates it
    numerically), on the model's device; cached in ``face_model.cache``.
    """
    from rig.face_model.data import FaceModelData
    from rig.face_model.model import FaceModel

    key = ("landmark_submodel",)
    if key in face_model.cache:
        return face_model.cache[key]
    d = face_model.data
    used_faces = [d.lmk_faces_idx.reshape(-1)]
    if d.dynamic_lmk_faces_idx is not None:
        used_faces.append(d.dynamic_lmk_faces_idx.reshape(-1))
    face_ids, face_inverse = np.unique(np.concatenate(used_faces), return_inverse=True)
    vert_ids, tri = np.unique(d.faces[face_ids], return_inverse=True)
    n_joints = d.n_joints
    R = d.J_regressor
    sub = FaceModelData(
        v_template=np.concatenate([d.v_template[vert_ids], R @ d.v_template]),
        faces=tri.reshape(-1, 3),
        shapedirs=np.concatenate([d.shapedirs[vert_ids], np.einsum("jv,vck->jck", R, d.shapedirs)]),
        exprdirs=np.concatenate([d.exprdirs[vert_ids], np.einsum("jv,vck->jck", R, d.exprdirs)]),
        posedirs=np.concatenate([d.posedirs[vert_ids], np.zeros((n_joints,) + d.posedirs.shape[1:])]),
        J_regressor=np.concatenate([np.zeros((n_joints, len(vert_ids))), np.eye(n_joints)], axis=1),
        parents=d.parents,
        lbs_weights=np.concatenate([d.lbs_weights[vert_ids], np.eye(n_joints)]),
        lmk_faces_idx=face_inverse[: d.lmk_faces_idx.size].reshape(d.lmk_faces_idx.shape),
        lmk_bary_coords=d.lmk_bary_coords,
        dynamic_lmk_faces_idx=(face_inverse[d.lmk_faces_idx.size:].reshape(d.dynamic_lmk_faces_idx.shape)
                               if d.dynamic_lmk_faces_idx is not None else None),
        dynamic_lmk_bary_coords=d.dynamic_lmk_bary_coords,
        expression_names=d.expression_names,
        name=f"{d.name} (landmark vertices)",
        metadata=d.metadata,
    )
    model = FaceModel.from_data(sub, torch.float64).to(face_model.device)
    face_model.cache[key] = model
    return model


def _landmarks_batch(face_model, x: np.ndarray) -> np.ndarray:
    """Landmarks of the neutral-identity head for each row of x = [expression (E), jaw angle].

    (N, E+1) float64 -> (N, 68*3) float64 metres.
    """
    E = face_model.n_expression
    xt = torch.as_tensor(x, dtype=face_model.dtype, device=face_model.device)
    p = RigParams.zeros(len(x), 0, E, face_model.dtype, face_model.device)
    p.expression = xt[:, :E]
    p.jaw_pose = torch.nn.functional.pad(xt[:, E:], (0, 2))
    with torch.no_grad():
        return face_model(p).landmarks.reshape(len(x), -1).double().cpu().numpy()


def _landmark_jacobian(face_model, x: np.ndarray, jaw_step: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks at x and their Jacobian (68*3, E+1), from one batched forward pass.

    For a fixed jaw angle the landmarks are affine in the expression (blendshapes, joint
    regression and skinning are all linear in it), so unit forward differences are exact; the jaw
    column uses a central difference (error ~ jaw_step^2).
    """
    E = len(x) - 1
    probes = np.repeat(x[None], E + 3, axis=0)
    probes[1 + np.arange(E), np.arange(E)] += 1.0
    probes[E + 1, E] += jaw_step
    probes[E + 2, E] -= jaw_step
    L = _landmarks_batch(face_model, probes)
    J = np.empty((L.shape[1], E + 1))
    J[:, :E] = (L[1:E + 1] - L[0]).T
    J[:, E] = (L[E + 1] - L[E + 2]) / (2 * jaw_step)
    return L[0], J


def _bounded_least_squares(A: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """argmin |A x - b|^2 subject to lower <= x <= upper.

    The unconstrained solution is tried first (A has full column rank thanks to the Tikhonov
    rows) and kept when it is feasible, which is the usual case for unbounded PCA bases; only
    otherwise does scipy's bounded-variable solver run.
    """
    x, *_ = np.linalg.lstsq(A, b, rcond=None)
    if np.all(x >= lower) and np.all(x <= upper):
        return x
    from scipy.optimize import lsq_linear

    return lsq_linear(A, b, bounds=(lower, upper), method="bvls").x


def solve_landmark_target(face_model, target: PresetTarget, config: PresetSolverConfig = PresetSolverConfig()
                          ) -> tuple[np.ndarray, float]:
    """Fit expression coefficients (E,) and a jaw opening angle (radians) to ``target``.

    Returns float64 numpy (expression, jaw_angle). See the module docstring for the objective.
    """
    face_model = landmark_submodel(face_model)
    E = face_model.n_expression
    x = np.zeros(E + 1)
    rest = _landmarks_batch(face_model, x[None])[0]
    rest68 = rest.reshape(N_LANDMARKS, 3)
    iod = float(np.linalg.norm(rest68[LEFT_EYE_OUTER] - rest68[RIGHT_EYE_OUTER]))
    goal = rest + iod * target.displacement.reshape(-1)
    sqrt_w = np.sqrt(target.weight.reshape(-1))
    lo_e, hi_e = expression_bounds(face_model)
    lower = np.r_[np.full(E, lo_e), 0.0]
    upper = np.r_[np.full(E, hi_e), math.radians(config.max_jaw_deg)]
    excluded = [i for i, n in enumerate(face_model.expression_names) if n.startswith(config.excluded_name_prefixes)]
    # bvls needs lower < upper: pin excluded units to a sliver above 0 that rounds away below.
    lower[excluded], upper[excluded] = 0.0, 1e-12
    # The least-squares problems are tiny; BLAS threads only add synchronisation, which on a
    # loaded machine made one preset take ~9 s instead of 0.15 s.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        x = _gauss_newton(face_model, x, goal, sqrt_w, lower, upper, config)
    x[excluded] = 0.0
    return x[:E], float(x[E])


def _gauss_newton(face_model, x: np.ndarray, goal: np.ndarray, sqrt_w: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, config: PresetSolverConfig) -> np.ndarray:
    """Gauss-Newton steps on the objective of the module docstring from ``x`` = [expression, jaw]."""
    E = len(x) - 1
    reg = None
    for _ in range(config.gauss_newton_steps):
        current, J = _landmark_jacobian(face_model, x)
        if reg is None:
            # Tikhonov weights relative to each block's mean squared column norm: scale-free.
            col_sq = ((sqrt_w[:, None] * J) ** 2).sum(0)
            e_scale = col_sq[:E].mean() if E else 1.0
            reg = np.sqrt(np.r_[np.full(E, config.expression_reg * e_scale), config.jaw_reg * max(col_sq[E], 1e-30)])
        # Linearised problem in absolute form: |W (J x' + current - J x - goal)|^2 + |reg * x'|^2.
        A = np.vstack([sqrt_w[:, None] * J, np.diag(reg)])
        b = np.r_[sqrt_w * (goal - current + J @ x), np.zeros(E + 1)]
        x = _bounded_least_squares(A, b, lower, upper)
    return x


def expression_preset(face_model, name: str, config: PresetSolverConfig = PresetSolverConfig()
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Expression coefficients (E,) and jaw pose (3,) axis-angle for preset ``name`` on ``face_model``.

    Tensors in the model's dtype and device. Solved once per (model instance, name, config) and cached.
    Raises ``InputError`` for an unknown name or a model without landmarks.
    """
    if name not in preset_names():
        raise InputError(f"unknown expression preset '{name}'; choose one of {', '.join(preset_names())}")
    key = ("expression_preset", name, config)
    if key not in face_model.cache:
        if name == "neutral":
            result = (np.zeros(face_model.n_expression), 0.0)
        else:
            if not face_model.has_landmarks:
                raise InputError(f"{face_model.data.name}: expression presets need the model's landmark embedding")
            with torch.no_grad():
                neutral = face_model(face_model.zero_params()).landmarks[0].double().cpu().numpy()
            result = solve_landmark_target(face_model, preset_target(name, neutral, config.still_weight), config)
        face_model.cache[key] = result
    expression, jaw = face_model.cache[key]
    expr_t = torch.as_tensor(expression, dtype=face_model.dtype, device=face_model.device)
    jaw_t = torch.tensor([jaw, 0.0, 0.0], dtype=face_model.dtype, device=face_model.device)
    return expr_t, jaw_t
