"""``FaceModel``: a FLAME-layout model as a torch module (buffers + the forward pass).

The module owns the arrays of a ``FaceModelData`` as buffers in one float dtype and calls the
pure functions of ``rig.face_model.lbs`` / ``rig.face_model.landmarks``. Build it with
``FaceModel.from_data(data, dtype)`` or ``rig.face_model.load_face_model(spec)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from rig.errors import InputError, ShapeError
from rig.face_model.data import FaceModelData
from rig.face_model.landmarks import ibug68_landmarks
from rig.face_model.lbs import check_parents, lbs
from rig.face_model.params import FIELD_NAMES, RigParams

# Largest magnitude a parameter may have: real coefficients are a few units, angles a few radians,
# translations metres. Anything beyond this is a corrupted file or a diverged optimisation.
MAX_PARAM_ABS = 1e4


class FaceModelOutput(NamedTuple):
    """Result of ``FaceModel.forward`` (metres, model frame, translation included).

    vertices: (B, V, 3) posed mesh.
    joints: (B, J, 3) posed joints: global, neck, jaw, eye_left, eye_right.
    landmarks: (B, 68, 3) iBUG-68 landmarks ((B, 0, 3) for a model without an embedding).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor


class FaceModel(torch.nn.Module):
    """FLAME-layout face model. All float buffers share ``dtype``; move it with ``.to(device)``."""

    def __init__(self, data: FaceModelData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self._data = data
        self._parents = check_parents(data.parents.tolist())
        if len(self._parents) != 5:
            raise ShapeError(f"{data.name}: FLAME layout needs 5 joints, the model has {len(self._parents)}")

        def f(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

        def i(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64)

        self.register_buffer("v_template", f(data.v_template))
        self.register_buffer("faces_idx", i(data.faces))
        # Shape and expression blendshapes side by side, FLAME-style, so one einsum does both.
        self.register_buffer("blenddirs", f(np.concatenate([data.shapedirs, data.exprdirs], axis=2)))
        self.register_buffer("posedirs", f(data.posedirs))
        self.register_buffer("J_regressor", f(data.J_regressor))
        self.register_buffer("lbs_weights", f(data.lbs_weights))
        self.register_buffer("lmk_faces_idx", i(data.lmk_faces_idx))
        self.register_buffer("lmk_bary_coords", f(data.lmk_bary_coords))
        has_dynamic = data.dynamic_lmk_faces_idx is not None and data.dynamic_lmk_bary_coords is not None
        self.register_buffer("dynamic_lmk_faces_idx", i(data.dynamic_lmk_faces_idx) if has_dynamic else None)
        self.register_buffer("dynamic_lmk_bary_coords", f(data.dynamic_lmk_bary_coords) if has_dynamic else None)
        # Per-instance caches (expression presets); not module state.
        self.cache: dict = {}

    @classmethod
    def from_data(cls, data: FaceModelData, dtype: torch.dtype = torch.float32) -> "FaceModel":
        return cls(data, dtype)

    # ------------------------------------------------------------------ properties

    @property
    def data(self) -> FaceModelData:
        """The float64 numpy arrays this module was built from (UVs, regions, albedo live here)."""
        return self._data

    @property
    def n_shape(self) -> int:
        return self._data.n_shape

    @property
    def n_expression(self) -> int:
        return self._data.n_expression

    @property
    def n_vertices(self) -> int:
        return self._data.n_vertices

    @property
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangles."""
        return self.faces_idx

    @property
    def expression_names(self) -> tuple[str, ...]:
        return tuple(self._data.expression_names)

    @property
    def parents(self) -> list[int]:
        return list(self._parents)

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    @property
    def has_landmarks(self) -> bool:
        return self.lmk_faces_idx.shape[0] > 0

    def zero_params(self, batch: int = 1) -> RigParams:
        """Neutral parameters for this model (its dtype and device)."""
        return RigParams.for_model(self, batch)

    # ------------------------------------------------------------------ forward

    def forward(self, params: RigParams) -> FaceModelOutput:
        """Pose the model.

        ``params.shape`` / ``params.expression`` may have fewer columns than the model (the
        remaining coefficients are zero), never more. ``params`` is moved to the model's
        dtype / device. Raises ``InputError`` when a value is NaN, infinite or larger in magnitude
        than ``MAX_PARAM_ABS``.
        """
        if params.n_shape > self.n_shape or params.n_expression > self.n_expression:
            raise ShapeError(f"{self._data.name}: params have {params.n_shape} shape / {params.n_expression} expression "
                             f"values, the model {self.n_shape} / {self.n_expression}")
        p = params.to(device=self.device, dtype=self.dtype)
        check_params(p, self._data.name)
        if p.n_expression > 0 and p.n_shape < self.n_shape:
            p = p.padded(self.n_shape, p.n_expression)
        coeffs = torch.cat([p.shape, p.expression], dim=1)
        out = lbs(coeffs, p.full_pose(), self.v_template, self.blenddirs, self.posedirs, self.J_regressor,
                  self._parents, self.lbs_weights)
        t = p.translation[:, None, :]
        vertices = out.vertices + t
        landmarks = ibug68_landmarks(vertices, self.faces_idx, self.lmk_faces_idx, self.lmk_bary_coords,
                                     self.dynamic_lmk_faces_idx, self.dynamic_lmk_bary_coords,
                                     p.global_pose, p.neck_pose)
        return FaceModelOutput(vertices, out.joints + t, landmarks)

    def extra_repr(self) -> str:
        return (f"name={self._data.name!r}, vertices={self.n_vertices}, faces={self.faces_idx.shape[0]}, "
                f"shape={self.n_shape}, expression={self.n_expression}, dtype={self.dtype}")


def check_params(params: RigParams, label: str = "face model") -> None:
    """Raise ``InputError`` if any field of ``params`` is NaN, infinite or beyond ``MAX_PARAM_ABS``.

    One fused reduction and one host sync per call (NaN fails ``<=``, so finiteness comes free);
    the per-field message is worked out only on failure."""
    with torch.no_grad():
        ok = torch.stack([(getattr(params, n).abs() <= MAX_PARAM_ABS).all() for n in FIELD_NAMES]).all()
        if bool(ok):
            return
        for name in FIELD_NAMES:
            t = getattr(params, name).detach()
            bad = ~(t.abs() <= MAX_PARAM_ABS)
            if bool(bad.any()):
                first = t[bad][0].item()
                what = "NaN" if math.isnan(first) else ("infinite" if math.isinf(first) else f"{first:.3g}")
                raise InputError(f"{label}: parameter '{name}' holds {int(bad.sum())} value(s) that are NaN, "
                                 f"infinite or beyond +-{MAX_PARAM_ABS:g} (first: {what})")
