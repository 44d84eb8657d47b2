"""Fit the face model to a clip's 2D landmarks: one identity, per-frame pose / expression / jaw, a camera.

Inputs are the follower's landmarks ``(T, 68, 2)`` pixels (NaN where no face was found) and the
image size; the output is a ``FitResult`` with the rig parameters of every frame, the camera and
the projected fitted landmarks.

Model: the face model's own iBUG-68 landmarks (FLAME's yaw-dependent contour for real FLAME),
evaluated on a landmark-only copy of the model (``landmark_submodel``) so one optimiser step is
cheap. Camera: "perspective" (``rig.render.camera.PerspectiveCamera``; fixed extrinsics looking at
the face from +z at the clip's median head distance, focal length given or estimated once per clip,
the head's motion in the per-frame ``translation``) or "weak_perspective"
(``OrthographicCamera.from_weak_perspective``, per-frame scale and shift, translation zero).

Objective (per frame, averaged over frames): a pseudo-Huber landmark error in units of the face's
radius (so it does not depend on the face's size in pixels), the jaw line down-weighted;
quadratic priors on shape, expression, jaw and neck (the neck and the global rotation move the
landmarks almost alike, so the neck prior leaves the head's rotation in ``global_pose``);
temporal smoothness as squared second differences (accelerations) of the projected landmarks and
of the parameters, which damps jitter but lets steady motion through without lag. Frames without
landmarks get no data term: the smoothness term carries the fit across them, starting from
landmarks interpolated in time.

Optimisation (Levenberg-Marquardt in torch, batched over frames; variables rescaled so that a
unit step moves the landmarks by about one face radius):
1. identity: up to ``identity_frames`` frames spread over the clip jointly fit the shared shape
   (and the focal length when not given) with their own pose / expression;
2. frames: windows of ``window`` frames (``overlap`` shared with the next window, and the last two
   kept frames of the previous window as fixed context for the smoothness term) fit pose,
   translation, expression, jaw and neck with the identity held. The smoothness couples
   neighbouring frames, so each step solves one block-pentadiagonal system (``rig.track.banded``).
Eye rotation is not observable in the 68 iBUG points (no pupils), so ``eye_pose`` stays zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from rig.errors import InputError, ShapeError
from rig.face_model.landmarks import barycentric_points, contour_bin, head_yaw
from rig.face_model.lbs import (axis_angle_to_matrix, blend_shapes, lbs, pose_features, regress_joints,
                                rigid_transforms, skin_vertices)
from rig.face_model.model import FaceModel
from rig.face_model.params import RigParams
from rig.render.camera import OrthographicCamera, PerspectiveCamera
from rig.track.banded import solve_block_pentadiagonal
from rig.track.config import TrackConfig
from rig.track.landmark_model import landmark_submodel
from rig.track.sequence import similarity_from_landmarks

_R_FRONT = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))  # camera in front of a +z-facing head
_POSE_KEYS = ("global_pose", "neck_pose", "jaw_pose")
DTYPE = torch.float64
# Weight of the acceleration penalty at smooth=1. As a filter on a landmark track (data term
# x^2/2, penalty lambda * (second difference)^2) the response is 1 / (1 + 2 lambda (2 - 2 cos w)^2):
# lambda = 0.1 keeps 83% of a motion with a 6-frame period (fast mouth motion at 25 fps), all of
# steady motion, and removes 76% of frame-to-frame alternating jitter.
SMOOTH_UNIT = 0.1
# Head-turn measure |a| (see ``_ClipFitter._contour_visibility``) at which the far half of a static
# jaw line gets weight 0. Chosen on renders of the default head turning +-40 degrees: yaw RMS error
# 3.7 deg without fading, 3.5 with 0.5, 2.4 with 0.8 (max 4 deg).
CONTOUR_FADE = 0.8


@dataclass
class FitResult:
    """The fitted clip (T frames).

    Attributes:
        params: ``RigParams`` with T rows, float64 on the CPU; ``shape`` is the same on every row,
            widths are the model's.
        landmarks_fit: (T, 68, 2) float64 projected model landmarks, pixels (centre convention).
        residual_px: (T,) RMS distance fitted vs detected landmarks, pixels; NaN where undetected.
        camera_model: "perspective" or "weak_perspective".
        K, R, t: perspective camera (3, 3), (3, 3), (3,) (OpenCV: ``X_cam = R X + t``); None for
            weak perspective.
        weak_perspective: (T, 3) DECA-style (scale, tx, ty) per frame; None for perspective.
        width, height: image size in pixels.
    """

    params: RigParams
    landmarks_fit: np.ndarray
    residual_px: np.ndarray
    camera_model: str
    K: np.ndarray | None
    R: np.ndarray | None
    t: np.ndarray | None
    weak_perspective: np.ndarray | None
    width: int
    height: int

    @property
    def focal_px(self) -> float | None:
        return None if self.K is None else float(self.K[0, 0])

    def camera(self, frames: slice | None = None) -> PerspectiveCamera | OrthographicCamera:
        """The camera as a ``rig.render.camera`` object (batch 1 perspective, or batch T weak)."""
        if self.camera_model == "perspective":
            as_t = lambda a: torch.as_tensor(a, dtype=DTYPE)[None]  # noqa: E731
            return PerspectiveCamera(as_t(self.K), as_t(self.R), as_t(self.t), self.width, self.height)
        wp = self.weak_perspective if frames is None else self.weak_perspective[frames]
        return OrthographicCamera.from_weak_perspective(torch.as_tensor(wp, dtype=DTYPE), self.width, self.height)


def interpolate_missing(landmarks: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Fill undetected frames by linear interpolation in time (nearest detected frame at the ends).

    landmarks: (T, 68, 2) with anything in undetected rows; detected: (T,) bool, at least one True.
    """
    T = landmarks.shape[0]
    idx = np.flatnonzero(detected)
    if idx.size == 0:
        raise InputError("no frame has landmarks to fit")
    flat = landmarks.reshape(T, -1)
    out = np.empty_like(flat, dtype=np.float64)
    t = np.arange(T)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(t, idx, flat[idx, k])
    return out.reshape(landmarks.shape)


def _second_difference_gram(n: int) -> torch.Tensor:
    """(n, n) ``D2^T D2`` for second differences ``a_j = x_j - 2 x_{j+1} + x_{j+2}`` of a length-n sequence."""
    D = torch.zeros((max(n - 2, 0), n), dtype=DTYPE)
    for j in range(max(n - 2, 0)):
        D[j, j], D[j, j + 1], D[j, j + 2] = 1.0, -2.0, 1.0
    return D.T @ D


def _rms_radius(points: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) -> (B,) RMS distance from the centroid."""
    c = points - points.mean(dim=1, keepdim=True)
    return (c * c).sum(-1).mean(-1).sqrt()


class _ClipFitter:
    """The optimisation of ``fit_landmarks`` (see the module docstring); one instance per clip."""

    def __init__(self, face_model: FaceModel, landmarks: np.ndarray, detected: np.ndarray,
                 width: int, height: int, config: TrackConfig):
        self.cfg = config
        self.width, self.height = int(width), int(height)
        data = face_model.data
        if data.lmk_faces_idx.shape[0] == 0:
            raise InputError(f"{data.name}: the face model has no landmark embedding; it cannot be tracked")
        self.n_shape_model, self.n_expr_model = data.n_shape, data.n_expression
        self.S = min(config.n_shape, self.n_shape_model)
        self.E = min(config.n_expression, self.n_expr_model)
        # Only the fitted coefficients' blendshapes: the others are zero throughout.
        sub = landmark_submodel(data)
        sub = dataclasses.replace(sub, shapedirs=sub.shapedirs[:, :, :self.S], exprdirs=sub.exprdirs[:, :, :self.E])
        self.model = FaceModel(sub, DTYPE)
        self.T = landmarks.shape[0]
        self.detected = np.asarray(detected, bool)
        obs = interpolate_missing(landmarks, self.detected)
        self.obs = torch.as_tensor(obs, dtype=DTYPE)
        self.weight = torch.as_tensor(self.detected, dtype=DTYPE)
        self.radius = _rms_radius(self.obs).clamp_min(1.0)
        lw = torch.ones(68, dtype=DTYPE)
        lw[:17] = config.contour_weight
        self.lmk_weight = lw / lw.sum()
        self.frame_lmk_weight = self.lmk_weight * self._contour_visibility(obs, data.dynamic_lmk_faces_idx is None)
        self.R0 = torch.tensor(_R_FRONT, dtype=DTYPE)
        self.perspective = config.camera == "perspective"
        f0 = (self.width / 2.0) / math.tan(math.radians(config.default_fov_deg) / 2.0)
        self.focal_prior_log = math.log(config.focal_px if config.focal_px else f0)
        self.log_focal = torch.tensor(self.focal_prior_log, dtype=DTYPE)
        self.shape = torch.zeros(self.S, dtype=DTYPE)
        self.init = self._similarity_init()
        self._set_variable_scales()

    @staticmethod
    def _contour_visibility(obs: np.ndarray, static_contour: bool) -> torch.Tensor:
        """(T, 68) weight factors: the far half of the jaw line fades out as the head turns.

        dlib puts the jaw-line points on the visible silhouette, which on a turned head is not
        the mesh line a static 68-point embedding follows (FLAME's dynamic contour exists for
        this). The turn is read from the detections themselves: a = (|p30 - p0| - |p30 - p16|) /
        (|p30 - p0| + |p30 - p16|) (nose tip vs the two ends of the jaw line) grows by ~0.02 per
        degree of yaw (measured on renders of the default head); the far side's points 9..16
        (a > 0) or 0..7 (a < 0) get weight max(0, 1 - |a| / CONTOUR_FADE). Models with a dynamic contour
        keep every point.
        """
        T = obs.shape[0]
        factor = torch.ones((T, 68), dtype=DTYPE)
        if not static_contour:
            return factor
        d0 = np.linalg.norm(obs[:, 30] - obs[:, 0], axis=1)
        d16 = np.linalg.norm(obs[:, 30] - obs[:, 16], axis=1)
        a = (d0 - d16) / np.maximum(d0 + d16, 1e-9)
        fade = torch.as_tensor(np.clip(1.0 - np.abs(a) / CONTOUR_FADE, 0.0, 1.0), dtype=DTYPE)
        right = torch.as_tensor(a > 0)
        factor[right, 9:17] = fade[right, None]
        factor[~right, 0:8] = fade[~right, None]
        return factor

    def _set_variable_scales(self) -> None:
        """Optimise every parameter in units that move the landmarks by ~1 face radius.

        Raw units mix metres, radians and blendshape coefficients of very different strengths;
        in these units one finite-difference step size suits every direction and the damping
        and priors are comparable across parameters.
        """
        with torch.no_grad():
            zero = self._zero_state(1)
            neutral = self.model(self._params(zero, torch.zeros(self.S, dtype=DTYPE))).landmarks[0]
            radius_m = float(_rms_radius(neutral[None, :, :2])[0])

            def sensitivity(n: int, which: str) -> torch.Tensor:
                if n == 0:
                    return torch.ones(0, dtype=DTYPE)
                eye = torch.eye(n, dtype=DTYPE)
                st = self._zero_state(n)
                shape = torch.zeros(self.S, dtype=DTYPE)
                if which == "expression":
                    st["expression"] = eye
                    lmk = self.model(self._params(st, shape)).landmarks
                else:
                    params = self._params(st, shape)
                    params = dataclasses.replace(params, shape=eye)
                    lmk = self.model(params).landmarks
                moved = (lmk - neutral).norm(dim=-1).pow(2).mean(-1).sqrt() / radius_m
                return moved.clamp_min(1e-3)

            self.shape_scale = sensitivity(self.S, "shape")
            depth = max(self.distance, radius_m) if self.perspective else 1.0
            self.var_scale = {"expression": sensitivity(self.E, "expression"),
                              "global_pose": torch.ones(3, dtype=DTYPE),
                              "neck_pose": torch.ones(3, dtype=DTYPE),
                              "jaw_pose": torch.ones(3, dtype=DTYPE)}
            if self.perspective:
                self.var_scale["translation"] = torch.tensor([1 / radius_m, 1 / radius_m, 1 / depth], dtype=DTYPE)
            else:
                self.var_scale["log_scale"] = torch.ones(1, dtype=DTYPE)
                self.var_scale["shift"] = torch.full((2,), 1 / radius_m, dtype=DTYPE)

    def _to_vars(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Physical per-frame state -> scaled leaf tensors for the optimiser."""
        return {k: (v.detach() * self.var_scale[k]).requires_grad_(True) for k, v in state.items()}

    def _from_vars(self, variables: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v / self.var_scale[k] for k, v in variables.items()}

    # ------------------------------------------------------------------ model + camera

    def _params(self, state: dict[str, torch.Tensor], shape: torch.Tensor) -> RigParams:
        B = state["expression"].shape[0]
        z = torch.zeros((B, 3), dtype=DTYPE)
        return RigParams(shape.expand(B, -1), state["expression"], state["global_pose"], state["neck_pose"], state["jaw_pose"],
                         torch.zeros((B, 6), dtype=DTYPE), state.get("translation", z))

    def _camera(self, state: dict[str, torch.Tensor], log_focal: torch.Tensor):
        B = state["expression"].shape[0]
        if self.perspective:
            f = log_focal.exp()
            zero, one = torch.zeros((), dtype=DTYPE), torch.ones((), dtype=DTYPE)
            K = torch.stack([torch.stack([f, zero, torch.tensor(self.width / 2.0, dtype=DTYPE)]),
                             torch.stack([zero, f, torch.tensor(self.height / 2.0, dtype=DTYPE)]),
                             torch.stack([zero, zero, one])])
            t = torch.tensor([0.0, 0.0, self.distance], dtype=DTYPE)
            return PerspectiveCamera(K.expand(B, 3, 3), self.R0.expand(B, 3, 3), t.expand(B, 3), self.width, self.height)
        cam = torch.cat([state["log_scale"].exp(), state["shift"]], dim=1)
        return OrthographicCamera.from_weak_perspective(cam, self.width, self.height)

    def project(self, state: dict[str, torch.Tensor], shape: torch.Tensor, log_focal: torch.Tensor) -> torch.Tensor:
        """(B, 68, 2) projected landmarks of the frames in ``state``."""
        lmk3d = self.model(self._params(state, shape)).landmarks
        return self._camera(state, log_focal).project(lmk3d).pixels

    def _contour_bins(self, state: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.model.lmk_faces_idx.shape[0] != 51:
            return None
        bins = contour_bin(head_yaw(state["global_pose"], state["neck_pose"]))
        return bins.clamp(max=self.model.dynamic_lmk_faces_idx.shape[0] - 1)

    def _project_fixed_bins(self, state: dict[str, torch.Tensor], bins: torch.Tensor | None,
                            shape: torch.Tensor | None = None, log_focal: torch.Tensor | None = None) -> torch.Tensor:
        """Like ``project`` but with FLAME's contour bins given, not re-chosen from the pose.

        For finite differences: a perturbation must not switch the contour to other triangles.
        The landmark maths are the face model's own functions (``lbs``, ``barycentric_points``).
        """
        m = self.model
        params = self._params(state, self.shape if shape is None else shape)
        coeffs = torch.cat([params.shape, params.expression], dim=1)
        out = lbs(coeffs, params.full_pose(), m.v_template, m.blenddirs, m.posedirs, m.J_regressor, m.parents,
                  m.lbs_weights)
        vertices = out.vertices + params.translation[:, None, :]
        lmk = barycentric_points(vertices, m.faces_idx, m.lmk_faces_idx, m.lmk_bary_coords)
        if bins is not None:
            contour = barycentric_points(vertices, m.faces_idx, m.dynamic_lmk_faces_idx[bins],
                                         m.dynamic_lmk_bary_coords[bins])
            lmk = torch.cat([contour, lmk], dim=1)
        return self._camera(state, self.log_focal if log_focal is None else log_focal).project(lmk).pixels

    def _blend_jacobian(self, state: dict[str, torch.Tensor], bins: torch.Tensor | None, columns: slice,
                        shape: torch.Tensor | None = None, log_focal: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 136, K) d(projected landmark coordinates) / d(blendshape coefficients ``columns``), nearly exact.

        ``columns`` indexes the model's concatenated [shape | expression] blendshapes.

        Blendshapes act on the unposed mesh, which skinning then moves rigidly per joint:
        d x_v / d c = (sum_j w_vj R_j) d_v, plus the effect of the joints' own drift (FLAME
        regresses joints from the shaped mesh: d J / d c = J_regressor @ d), taken through
        forward differences of the skinning over the 15 joint coordinates. Exact up to those
        differences; replaces E (or S) forward-difference evaluations of the whole model.
        """
        m = self.model
        params = self._params(state, self.shape if shape is None else shape)
        B = params.batch_size
        coeffs = torch.cat([params.shape, params.expression], dim=1)
        v_shaped = m.v_template[None] + blend_shapes(coeffs, m.blenddirs)
        joints = regress_joints(m.J_regressor, v_shaped)
        rot = axis_angle_to_matrix(params.full_pose())
        _, rel = rigid_transforms(rot, joints, m.parents)
        faces_idx, bary = m.lmk_faces_idx.expand(B, -1), m.lmk_bary_coords.expand(B, -1, -1)
        if bins is not None:
            faces_idx = torch.cat([m.dynamic_lmk_faces_idx[bins], faces_idx], dim=1)
            bary = torch.cat([m.dynamic_lmk_bary_coords[bins], bary], dim=1)
        corners = m.faces_idx[faces_idx]  # (B, 68, 3) vertex ids
        weights = m.lbs_weights[corners]  # (B, 68, 3, J)
        M = torch.einsum("blcj,bjxy->blcxy", weights, rel[:, :, :3, :3])
        dirs = m.blenddirs[:, :, columns][corners]  # (B, 68, 3, 3, K)
        dX = torch.einsum("blc,blcxy,blcye->blxe", bary, M, dirs)  # (B, 68, 3, K)
        # The posed landmarks (the rest of the LBS pass), then the camera's Jacobian there by
        # differences of the (cheap) projection.
        v_posed = v_shaped + blend_shapes(pose_features(rot), m.posedirs)
        vertices = skin_vertices(v_posed, m.lbs_weights, rel) + params.translation[:, None, :]
        X = barycentric_points(vertices, m.faces_idx, faces_idx, bary)
        eps = 1e-6
        # Joint drift. With world rotations R_k of the joints (R_{parent(root)} = I), a posed point
        # x = sum_j w_j (R_j (v - J_j) + t_j) has d x / d J_k = (R_{parent(k)} - R_k) * W_k(v),
        # W_k(v) = the skinning weight of joint k's whole subtree; times d J / d c.
        parents = m.parents
        n_j = joints.shape[1]
        R_world = rel[:, :, :3, :3]
        R_parent = torch.stack([torch.eye(3, dtype=DTYPE).expand(B, 3, 3) if parents[k] < 0 else R_world[:, parents[k]]
                                for k in range(n_j)], dim=1)
        subtree = torch.eye(n_j, dtype=DTYPE)  # subtree[j, k] = 1 if j is k or below k
        for j in range(n_j):
            k = parents[j]
            while k >= 0:
                subtree[j, k] = 1.0
                k = parents[k]
        w_sub = torch.einsum("blc,blcj,jk->blk", bary, weights, subtree)  # (B, 68, J)
        dJ_dc = torch.einsum("jv,vck->jck", m.J_regressor, m.blenddirs[:, :, columns])  # (J, 3, K)
        dX = dX + torch.einsum("blk,bkxy,kyq->blxq", w_sub, R_parent - R_world, dJ_dc)
        probe = torch.cat([X[:, None], X[:, None] + eps * torch.eye(3, dtype=DTYPE)[None, :, None, :]], dim=1)
        cam = self._camera({k: v.repeat_interleave(4, dim=0) for k, v in state.items()},
                           self.log_focal if log_focal is None else log_focal)
        pix = cam.project(probe.reshape(B * 4, 68, 3)).pixels.reshape(B, 4, 68, 2)
        Jp = ((pix[:, 1:] - pix[:, :1]) / eps).permute(0, 2, 3, 1)  # (B, 68, 2, 3)
        return torch.einsum("bluk,blke->blue", Jp, dX).reshape(B, 136, dX.shape[-1])

    # ------------------------------------------------------------------ initialisation

    def _similarity_init(self) -> dict[str, torch.Tensor]:
        """Per-frame roll, scale and position from a 2D similarity between model and landmarks."""
        with torch.no_grad():
            neutral = self.model(self._params(self._zero_state(1), self.shape)).landmarks[0]  # (68, 3)
        q = torch.stack([neutral[:, 0], -neutral[:, 1]], dim=-1).numpy()  # image-like axes (v down)
        _, q_radius, q_roll = similarity_from_landmarks(q)
        c0 = neutral.mean(0).numpy()
        obs = self.obs.numpy()
        state = self._zero_state(self.T)
        scale_px = np.empty(self.T)
        centre = np.empty((self.T, 2))
        for i in range(self.T):
            c, r, roll = similarity_from_landmarks(obs[i])
            scale_px[i] = r / q_radius
            centre[i] = c
            state["global_pose"][i, 2] = -(roll - q_roll)  # image clockwise = model rotation about -z
        if self.perspective:
            f = math.exp(self.focal_prior_log)
            z = f / scale_px
            self.distance = float(np.median(z[self.detected] if self.detected.any() else z))
            P = np.stack([(centre[:, 0] - self.width / 2) * z / f, (centre[:, 1] - self.height / 2) * z / f, z], 1)
            world = np.stack([P[:, 0], -P[:, 1], self.distance - P[:, 2]], 1)
            state["translation"] = torch.as_tensor(world - c0, dtype=DTYPE)
        else:
            half = min(self.width, self.height) / 2.0
            s = scale_px / half
            trans2 = (centre - np.array([self.width / 2.0, self.height / 2.0])) / (half * s[:, None]) \
                - np.array([c0[0], -c0[1]])
            state["log_scale"] = torch.as_tensor(np.log(s)[:, None], dtype=DTYPE)
            state["shift"] = torch.as_tensor(np.stack([trans2[:, 0], -trans2[:, 1]], 1), dtype=DTYPE)
            self.distance = 0.0
        return state

    def _zero_state(self, B: int) -> dict[str, torch.Tensor]:
        state = {"expression": torch.zeros((B, self.E), dtype=DTYPE)}
        for k in _POSE_KEYS:
            state[k] = torch.zeros((B, 3), dtype=DTYPE)
        if self.perspective:
            state["translation"] = torch.zeros((B, 3), dtype=DTYPE)
        else:
            state["log_scale"] = torch.zeros((B, 1), dtype=DTYPE)
            state["shift"] = torch.zeros((B, 2), dtype=DTYPE)
        return state

    # ------------------------------------------------------------------ objective

    def _data_term(self, pred: torch.Tensor, frames: slice | np.ndarray) -> torch.Tensor:
        """Sum over the frames of the weighted pseudo-Huber landmark error (face radii)."""
        obs, radius, weight = self.obs[frames], self.radius[frames], self.weight[frames]
        sq = ((pred - obs) ** 2).sum(-1) / (radius[:, None] ** 2)
        d2 = self.cfg.robust_scale ** 2
        rho = d2 * (torch.sqrt(1.0 + sq / d2) - 1.0)
        return ((rho * self.frame_lmk_weight[frames]).sum(-1) * weight).sum()

    def _prior_term(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        jaw = state["jaw_pose"]
        # The jaw opens about its x axis; sideways / twisting jaw motion is rare and poorly seen.
        jaw_cost = jaw[:, 0] ** 2 + 10.0 * (jaw[:, 1:] ** 2).sum(-1)
        return (cfg.expression_prior * (state["expression"] ** 2).sum(-1)
                + cfg.jaw_prior * jaw_cost
                + cfg.neck_prior * (state["neck_pose"] ** 2).sum(-1)).sum()

    def _smooth_term(self, pred: torch.Tensor, state: dict[str, torch.Tensor], radius: torch.Tensor,
                     context: tuple[torch.Tensor, dict[str, torch.Tensor]] | None) -> torch.Tensor:
        """Squared accelerations of the landmarks (radii) and parameters, summed over frames."""
        if self.cfg.smooth <= 0:
            return pred.new_zeros(())
        lmk = pred / radius[:, None, None]
        params = {k: v for k, v in state.items()}
        if context is not None:
            ctx_pred, ctx_state = context
            lmk = torch.cat([ctx_pred / radius[:1, None, None], lmk], 0)
            params = {k: torch.cat([ctx_state[k], v], 0) for k, v in params.items()}
        if lmk.shape[0] < 3:
            return pred.new_zeros(())
        acc = lmk[2:] - 2 * lmk[1:-1] + lmk[:-2]
        total = ((acc ** 2).sum(-1) * self.lmk_weight).sum()
        for k, v in params.items():
            weight, unit = self._param_smoothing(k)
            a = (v[2:] - 2 * v[1:-1] + v[:-2]) * unit
            total = total + weight * (a ** 2).sum()
        return SMOOTH_UNIT * self.cfg.smooth * total

    @staticmethod
    def _param_smoothing(key: str) -> tuple[float, float]:
        """(weight, unit factor) of a parameter's acceleration penalty, relative to the landmarks'."""
        if key == "expression":
            return 1e-3, 1.0
        if key in ("translation", "shift"):
            return 1e-2, 1.0 / 0.05  # metres: 5 cm of acceleration counts like 1 rad of rotation
        return 1e-2, 1.0

    # ------------------------------------------------------------------ optimisation

    def fit_identity(self) -> None:
        """Stage 1: shared shape (+ focal) from frames spread over the clip.

        Levenberg-Marquardt over K key frames' own parameters plus the shared ones (shape
        coefficients, log focal length): the normal matrix is block diagonal with a dense border
        (an "arrow"), solved through the Schur complement of the shared block.
        """
        cfg = self.cfg
        det = np.flatnonzero(self.detected)
        n_key = min(cfg.identity_frames, det.size)
        frames = det[np.unique(np.round(np.linspace(0, det.size - 1, n_key)).astype(int))]
        estimate_focal = self.perspective and cfg.focal_px is None
        with torch.no_grad():
            theta = self._pack(self._to_vars({k: v[frames] for k, v in self.init.items()})).detach()
            shared = torch.cat([self.shape * self.shape_scale,
                                self.log_focal.reshape(1) if estimate_focal else torch.zeros(0, dtype=DTYPE)])
            theta, shared = self._identity_lm(theta, shared, frames, estimate_focal, cfg.iters_identity)
        self.shape = shared[:self.S] / self.shape_scale
        if estimate_focal:
            self.log_focal = shared[self.S].clone()
            # Keep the camera's stand-off consistent with the new focal length: the head's size in
            # pixels fixes distance / focal, so scale the distance and the depths with it.
            ratio = math.exp(float(self.log_focal) - self.focal_prior_log)
            if abs(ratio - 1.0) > 1e-9:
                self._rescale_depth(ratio)

    def _identity_objective(self, theta: torch.Tensor, shared: torch.Tensor, frames: np.ndarray,
                            estimate_focal: bool) -> torch.Tensor:
        K = theta.shape[0]
        shape = shared[:self.S] / self.shape_scale
        log_focal = shared[self.S] if estimate_focal else self.log_focal
        state = self._from_vars(self._unpack(theta))
        pred = self.project(state, shape, log_focal)
        loss = self._data_term(pred, frames) + self._prior_term(state) + K * self.cfg.shape_prior * (shape ** 2).sum()
        if estimate_focal:
            loss = loss + K * self.cfg.focal_prior * (log_focal - self.focal_prior_log) ** 2
        return loss

    def _identity_lm(self, theta: torch.Tensor, shared: torch.Tensor, frames: np.ndarray, estimate_focal: bool,
                     iters: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Levenberg-Marquardt of ``fit_identity``; returns the scaled (theta (K, P), shared (G,))."""
        K, P = theta.shape
        E, S = self.E, self.S
        obs, R, wt = self.obs[frames], self.radius[frames], self.weight[frames]
        R2 = (R ** 2)[:, None]
        delta_sq = self.cfg.robust_scale ** 2
        prior_w = self._prior_diagonal()
        no_focal = torch.zeros(0, dtype=DTYPE)
        shared_prior = torch.cat([K * self.cfg.shape_prior / self.shape_scale ** 2,
                                  torch.full((1,), K * self.cfg.focal_prior, dtype=DTYPE) if estimate_focal else no_focal])
        shared_ref = torch.cat([torch.zeros(S, dtype=DTYPE),
                                torch.full((1,), self.focal_prior_log, dtype=DTYPE) if estimate_focal else no_focal])
        eps = 1e-6
        Pr = P - E
        basis = torch.cat([torch.zeros(1, P, dtype=DTYPE), eps * torch.eye(P, dtype=DTYPE)[E:]])
        f = self._identity_objective(theta, shared, frames, estimate_focal)
        mu = 1e-3
        for _ in range(max(iters, 0)):
            shape = shared[:S] / self.shape_scale
            log_focal = shared[S] if estimate_focal else self.log_focal
            state = self._from_vars(self._unpack(theta))
            bins = self._contour_bins(state)
            batch = (theta[:, None, :] + basis[None]).reshape(-1, P)
            pred = self._project_fixed_bins(self._from_vars(self._unpack(batch)),
                                            None if bins is None else bins.repeat_interleave(Pr + 1), shape, log_focal)
            pred = pred.reshape(K, Pr + 1, 68, 2)
            base = pred[:, 0]
            J_rest = ((pred[:, 1:] - base[:, None]) / eps).reshape(K, Pr, 136).transpose(1, 2)
            J_expr = self._blend_jacobian(state, bins, slice(S, S + E), shape, log_focal) / self.var_scale["expression"]
            J = torch.cat([J_expr, J_rest], dim=2)
            Jg = [self._blend_jacobian(state, bins, slice(0, S), shape, log_focal) / self.shape_scale]
            if estimate_focal:
                moved = self._project_fixed_bins(state, bins, shape, log_focal + eps)
                Jg.append(((moved - base) / eps).reshape(K, 136, 1))
            Jg = torch.cat(Jg, dim=2)  # (K, 136, G)
            r = (base - obs).reshape(K, 136)
            s = (r.reshape(K, 68, 2) ** 2).sum(-1) / R2
            c = (wt[:, None] * self.frame_lmk_weight[frames] * 0.5 / torch.sqrt(1.0 + s / delta_sq)
                 ).repeat_interleave(2, dim=1) / R2
            g = 2.0 * torch.einsum("nk,nkp->np", c * r, J) + 2.0 * prior_w * theta
            H = 2.0 * torch.einsum("nk,nkp,nkq->npq", c, J, J) + torch.diag_embed(2.0 * prior_w).expand(K, P, P)
            Hg = 2.0 * torch.einsum("nk,nkp,nkq->npq", c, J, Jg)  # (K, P, G)
            Hgg = 2.0 * torch.einsum("nk,nkp,nkq->pq", c, Jg, Jg) + torch.diag(2.0 * shared_prior)
            gg = 2.0 * torch.einsum("nk,nkp->p", c * r, Jg) + 2.0 * shared_prior * (shared - shared_ref)
            diag, diag_g = torch.diagonal(H, dim1=1, dim2=2), torch.diagonal(Hgg)
            accepted = False
            for _attempt in range(6):
                Hd = H + torch.diag_embed(mu * diag + 1e-9)
                Hgd = Hgg + torch.diag(mu * diag_g + 1e-9)
                try:
                    Hinv_Hg = torch.linalg.solve(Hd, Hg)
                    Hinv_g = torch.linalg.solve(Hd, g.unsqueeze(-1)).squeeze(-1)
                    schur = Hgd - torch.einsum("npg,nph->gh", Hg, Hinv_Hg)
                    rhs = -gg + torch.einsum("npg,np->g", Hg, Hinv_g)
                    d_shared = torch.linalg.solve(schur, rhs)
                except torch.linalg.LinAlgError:
                    mu *= 8.0
                    continue
                d_theta = -(Hinv_g + torch.einsum("npg,g->np", Hinv_Hg, d_shared))
                cand_theta, cand_shared = theta + d_theta, shared + d_shared
                f_new = self._identity_objective(cand_theta, cand_shared, frames, estimate_focal)
                if torch.isfinite(f_new) and f_new < f:
                    accepted = True
                    break
                mu *= 8.0
            if not accepted:
                break
            improvement = float(f - f_new)
            theta, shared, f = cand_theta, cand_shared, f_new
            mu = max(mu / 4.0, 1e-7)
            if improvement < 1e-6 * max(float(f), 1e-12):
                break
        return theta, shared

    def _prior_diagonal(self) -> torch.Tensor:
        """(P,) weights w of the per-frame quadratic priors sum w v^2, in scaled variables."""
        prior_w = []
        for k, scale in self.var_scale.items():
            if k == "expression":
                w = torch.full_like(scale, self.cfg.expression_prior)
            elif k == "jaw_pose":
                w = self.cfg.jaw_prior * torch.tensor([1.0, 10.0, 10.0], dtype=DTYPE)
            elif k == "neck_pose":
                w = torch.full_like(scale, self.cfg.neck_prior)
            else:
                w = torch.zeros_like(scale)
            prior_w.append(w / scale ** 2)  # w (v / s)^2 in the scaled variable v
        return torch.cat(prior_w)

    def _rescale_depth(self, ratio: float) -> None:
        """Move the initial head positions so their image stays put under focal * ratio."""
        tr = self.init["translation"]
        with torch.no_grad():
            neutral_c = self.model(self._params(self._zero_state(1), self.shape)).landmarks[0].mean(0)
            world = tr + neutral_c  # head centre in world
            cam = torch.stack([world[:, 0], -world[:, 1], self.distance - world[:, 2]], 1) * ratio
            self.distance *= ratio
            new_world = torch.stack([cam[:, 0], -cam[:, 1], self.distance - cam[:, 2]], 1)
            self.init["translation"] = new_world - neutral_c

    def fit_frames(self, progress=None) -> dict[str, torch.Tensor]:
        """Stage 2: every frame, window by window; returns the per-frame state (T rows)."""
        cfg = self.cfg
        result = {k: v.clone() for k, v in self.init.items()}
        step = cfg.window - cfg.overlap
        start, solved_until = 0, 0
        context = None
        last_solved: dict[str, torch.Tensor] | None = None
        while start < self.T:
            end = min(start + cfg.window, self.T)
            frames = slice(start, end)
            init = {k: v[frames].clone() for k, v in result.items()}
            if last_solved is not None and end > solved_until:
                # Frames new to this window start from the last kept frame's expression / jaw /
                # neck (their rigid pose and position come from the per-frame similarity init;
                # the overlap frames start from the previous window's solution).
                fresh = slice(solved_until - start, end - start)
                for k in ("expression", "jaw_pose", "neck_pose"):
                    init[k][fresh] = last_solved[k]
            variables = self._to_vars(init)
            radius = self.radius[frames]
            n = end - start

            def objective():
                state = self._from_vars(variables)
                pred = self.project(state, self.shape, self.log_focal)
                loss = self._data_term(pred, frames) + self._prior_term(state)
                loss = loss + self._smooth_term(pred, state, radius, context)
                return loss / n

            variables = self._gauss_newton(variables, frames, context, cfg.iters_window)
            state = self._from_vars(variables)
            # Keep the first `step` frames; the look-ahead (overlap) frames are solved again, with
            # more future, by the next window, which starts from this solution.
            keep_end = end if end == self.T else start + step
            for k in result:
                result[k][frames] = state[k].detach()
            solved_until = end
            if progress is not None:
                progress(keep_end - start)
            ctx_frames = slice(max(keep_end - 2, 0), keep_end)
            ctx_state = {k: v[ctx_frames].clone() for k, v in result.items()}
            with torch.no_grad():
                context = (self.project(ctx_state, self.shape, self.log_focal), ctx_state)
            last_solved = {k: v[keep_end - 1].clone() for k, v in result.items()}
            start = keep_end
        return result

    def interpolate_gaps(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Replace the parameters of undetected frames by linear interpolation between detected ones.

        Inside a window the smoothness term alone pulls a gap's frames along, but it converges
        there far more slowly than on observed frames; interpolating the neighbours' solution
        is the better estimate (and held constant before the first / after the last detection).
        """
        if self.detected.all():
            return state
        idx = np.flatnonzero(self.detected)
        t = np.arange(self.T)
        out = {}
        for k, v in state.items():
            a = v.detach().numpy().copy()
            for c in range(a.shape[1]):
                a[:, c] = np.interp(t, idx, a[idx, c])
            out[k] = torch.as_tensor(a, dtype=DTYPE)
        return out

    # ------------------------------------------------------------------ Gauss-Newton for windows

    def _pack(self, variables: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([variables[k] for k in self.var_scale], dim=1)

    def _unpack(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [v.numel() for v in self.var_scale.values()]
        return dict(zip(self.var_scale, torch.split(theta, sizes, dim=1)))

    def _window_objective(self, theta: torch.Tensor, frames: slice, context) -> torch.Tensor:
        state = self._from_vars(self._unpack(theta))
        pred = self.project(state, self.shape, self.log_focal)
        return (self._data_term(pred, frames) + self._prior_term(state)
                + self._smooth_term(pred, state, self.radius[frames], context))

    def _gauss_newton(self, variables: dict[str, torch.Tensor], frames: slice, context, iters: int
                      ) -> dict[str, torch.Tensor]:
        """Levenberg-Marquardt on one window; returns the scaled variables.

        Per-frame Jacobians of the 136 landmark coordinates come from forward differences, all
        frames and directions in one batch (the landmark-only model makes that cheap). Data (as
        iteratively reweighted least squares for the pseudo-Huber loss) and priors give per-frame
        normal equations; the smoothness terms contribute their exact gradient and the diagonal
        blocks of their Gauss-Newton matrix (block Jacobi), and the damping + the decrease test
        keep every accepted step a descent. Each step solves n small (P, P) systems.
        """
        with torch.no_grad():
            theta = self._pack(variables).detach().clone()
            n, P = theta.shape
            lam = SMOOTH_UNIT * self.cfg.smooth
            obs, R, wt = self.obs[frames], self.radius[frames], self.weight[frames]
            R2 = (R ** 2)[:, None]
            delta_sq = self.cfg.robust_scale ** 2
            lw2 = self.lmk_weight.repeat_interleave(2)  # (136,) per coordinate
            if context is not None:
                ctx_pred, ctx_state = context
                ctx_norm = ctx_pred / R[:1, None, None]
                ctx_theta = torch.cat([ctx_state[k] * self.var_scale[k] for k in self.var_scale], dim=1)
            else:
                ctx_norm = obs.new_zeros((0, 68, 2))
                ctx_theta = theta.new_zeros((0, P))
            c0 = ctx_norm.shape[0]
            # Per-parameter acceleration weight and the factor from scaled variable to penalised unit.
            p_weight = torch.cat([torch.full((self.var_scale[k].numel(),), self._param_smoothing(k)[0], dtype=DTYPE)
                                  for k in self.var_scale])
            p_factor = torch.cat([self._param_smoothing(k)[1] / self.var_scale[k] for k in self.var_scale])
            dtd = _second_difference_gram(n + c0)[c0:, c0:]  # D2^T D2 restricted to the window
            d0, d1, d2 = (torch.diagonal(dtd, offset=k) for k in range(3))
            prior_w = self._prior_diagonal()

            f = self._window_objective(theta, frames, context)
            mu = 1e-3
            eps = 1e-6
            E = self.E
            Pr = P - E  # directions by forward differences; expression columns come analytically
            basis = torch.cat([torch.zeros(1, P, dtype=DTYPE), eps * torch.eye(P, dtype=DTYPE)[E:]])  # (Pr+1, P)
            for _ in range(max(iters, 0)):
                state = self._from_vars(self._unpack(theta))
                bins = self._contour_bins(state)
                batch = (theta[:, None, :] + basis[None]).reshape(-1, P)
                pred = self._project_fixed_bins(self._from_vars(self._unpack(batch)),
                                                None if bins is None else bins.repeat_interleave(Pr + 1))
                pred = pred.reshape(n, Pr + 1, 68, 2)
                base = pred[:, 0]
                J_rest = ((pred[:, 1:] - base[:, None]) / eps).reshape(n, Pr, 136).transpose(1, 2)
                J_expr = self._blend_jacobian(state, bins, slice(self.S, self.S + E)) / self.var_scale["expression"]
                J = torch.cat([J_expr, J_rest], dim=2)  # (n, 136, P), columns in variable order
                r = (base - obs).reshape(n, 136)
                s = (r.reshape(n, 68, 2) ** 2).sum(-1) / R2
                c = (wt[:, None] * self.frame_lmk_weight[frames] * 0.5 / torch.sqrt(1.0 + s / delta_sq)
                     ).repeat_interleave(2, dim=1) / R2
                g = 2.0 * torch.einsum("nk,nkp->np", c * r, J)
                H = 2.0 * torch.einsum("nk,nkp,nkq->npq", c, J, J)
                off1 = H.new_zeros((max(n - 1, 0), P, P))
                off2 = H.new_zeros((max(n - 2, 0), P, P))
                if lam > 0 and n + c0 >= 3:
                    L = torch.cat([ctx_norm, base / R[:, None, None]])
                    a = L[2:] - 2 * L[1:-1] + L[:-2]
                    A = torch.nn.functional.pad(a, (0, 0, 0, 0, 2, 2))
                    gL = (A[:-2] - 2 * A[1:-1] + A[2:])[c0:] * self.lmk_weight[None, :, None]  # D2^T a, weighted
                    gL = 2.0 * lam * gL / R[:, None, None]
                    g = g + torch.einsum("nk,nkp->np", gL.reshape(n, 136), J)
                    Jn = J / R[:, None, None]
                    WJ = Jn * lw2[None, :, None]
                    H = H + 2.0 * lam * d0[:, None, None] * torch.einsum("nkp,nkq->npq", WJ, Jn)
                    th = torch.cat([ctx_theta, theta]) * p_factor
                    b = th[2:] - 2 * th[1:-1] + th[:-2]
                    B = torch.nn.functional.pad(b, (0, 0, 2, 2))
                    gp = (B[:-2] - 2 * B[1:-1] + B[2:])[c0:]
                    g = g + 2.0 * lam * p_weight * p_factor * gp
                    pdiag = 2.0 * lam * p_weight * p_factor ** 2  # (P,)
                    H = H + torch.diag_embed(d0[:, None] * pdiag)
                    if n >= 2:
                        off1 = 2.0 * lam * d1[:, None, None] * torch.einsum("nkp,nkq->npq", WJ[:-1], Jn[1:])
                        off1 = off1 + torch.diag_embed(d1[:, None] * pdiag)
                    if n >= 3:
                        off2 = 2.0 * lam * d2[:, None, None] * torch.einsum("nkp,nkq->npq", WJ[:-2], Jn[2:])
                        off2 = off2 + torch.diag_embed(d2[:, None] * pdiag)
                g = g + 2.0 * prior_w * theta
                H = H + torch.diag_embed(2.0 * prior_w).expand(n, P, P)
                diag = torch.diagonal(H, dim1=1, dim2=2)
                accepted = False
                for _attempt in range(6):
                    A_mat = H + torch.diag_embed(mu * diag + 1e-9)
                    try:
                        delta = solve_block_pentadiagonal(A_mat, off1, off2, -g)
                    except torch.linalg.LinAlgError:
                        mu *= 8.0
                        continue
                    candidate = theta + delta
                    f_new = self._window_objective(candidate, frames, context)
                    if torch.isfinite(f_new) and f_new < f:
                        accepted = True
                        break
                    mu *= 8.0
                if not accepted:
                    break
                improvement = float(f - f_new)
                theta, f = candidate, f_new
                mu = max(mu / 4.0, 1e-7)
                if improvement < 1e-6 * max(float(f), 1e-12):
                    break
        return {k: v.clone() for k, v in self._unpack(theta).items()}

    def result(self, state: dict[str, torch.Tensor], landmarks: np.ndarray) -> FitResult:
        with torch.no_grad():
            pred = self.project(state, self.shape, self.log_focal).numpy()
            params = self._params(state, self.shape).detach().clone().padded(self.n_shape_model, self.n_expr_model)
        err = np.sqrt(((pred - landmarks) ** 2).sum(-1).mean(-1))
        err[~self.detected] = np.nan
        if self.perspective:
            f = float(self.cfg.focal_px) if self.cfg.focal_px else float(self.log_focal.exp())
            K = np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])
            R, t, wp = np.array(_R_FRONT), np.array([0.0, 0.0, self.distance]), None
        else:
            K = R = t = None
            wp = torch.cat([state["log_scale"].exp(), state["shift"]], 1).detach().numpy()
        return FitResult(params, pred, err, self.cfg.camera, K, R, t, wp, self.width, self.height)


def fit_landmarks(face_model: FaceModel, landmarks: np.ndarray, detected: np.ndarray, width: int, height: int,
                  config: TrackConfig = TrackConfig(), progress=None) -> FitResult:
    """Fit ``face_model`` to a clip's landmarks (see the module docstring).

    Args:
        face_model: any FLAME-layout ``FaceModel`` with an iBUG-68 embedding.
        landmarks: (T, 68, 2) pixels, centre convention; rows of undetected frames are ignored.
        detected: (T,) bool.
        width, height: image size in pixels.
        config: ``TrackConfig``.
        progress: optional callable taking the number of frames just finished.
    Raises:
        InputError when no frame is detected; ShapeError on malformed arrays.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    detected = np.asarray(detected, dtype=bool)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2) or detected.shape != landmarks.shape[:1]:
        raise ShapeError(f"fit_landmarks: expected landmarks (T, 68, 2) and detected (T,), got "
                         f"{landmarks.shape} and {detected.shape}")
    if not detected.any():
        raise InputError("no face was found in any frame: nothing to fit")
    if not np.all(np.isfinite(landmarks[detected])):
        raise ShapeError("fit_landmarks: detected frames must have finite landmarks")
    with torch_threads(config.torch_threads):
        fitter = _ClipFitter(face_model, landmarks, detected, width, height, config)
        fitter.fit_identity()
        state = fitter.fit_frames(progress)
        state = fitter.interpolate_gaps(state)
        return fitter.result(state, landmarks)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore the count.

    The fit is a long chain of tiny tensor ops: extra threads only add synchronisation, and on a
    busy machine they made one objective evaluation 9x slower (186 ms vs 20 ms, measured).
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
