"""``FaceModelData``: the arrays that define a FLAME-layout face model, and rig's file format for it.

Every face model rig uses (a real FLAME ``generic_model.pkl`` or the embedded default head) is
turned into this one record of plain float64 / int64 numpy arrays. The torch module
(``rig.face_model.model.FaceModel``) owns them as buffers; loaders and the default-head builder
only produce them.

Conventions (the FLAME ones): metres; y up, the face looks along +z, x points to the subject's left;
joints ``global, neck, jaw, eye_left, eye_right`` (kinematic tree global -> neck -> {jaw, eyes}).

Landmarks are an embedding in the mesh surface (triangle index + barycentric coordinates):
either 68 static points in iBUG-68 order, or FLAME's split of 51 static points (iBUG 17..67) plus a
dynamic contour table (79 yaw bins x 17 points, iBUG 0..16) chosen by head yaw.

rig's file format is a single ``.npz`` written with ``allow_pickle=False``; the non-array fields
(names, metadata) travel as a JSON string under the key ``__meta__``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rig.errors import CheckpointError
from rig.io.atomic import atomic_path
from rig.io.guard import untrusted
from rig.io.npy import read_npz

JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
REGION_NAMES = ("skin", "lips", "eyes", "brows", "teeth", "hair", "neck")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FaceModelData:
    """Arrays of a FLAME-layout model. V vertices, F triangles, J=5 joints, S shape, E expression.

    Attributes:
        v_template: (V, 3) float64, neutral mesh in metres.
        faces: (F, 3) int64 triangle vertex indices, counter-clockwise seen from outside.
        shapedirs: (V, 3, S) float64 identity blendshapes (metres per unit coefficient).
        exprdirs: (V, 3, E) float64 expression blendshapes.
        posedirs: (V, 3, 9*(J-1)) float64 pose correctives, FLAME layout: feature k*9+m is
            (R_k - I) flattened row-major for joint k = 1..J-1.
        J_regressor: (J, V) float64 dense joint regressor.
        parents: (J,) int64, parent joint index, -1 for the root.
        lbs_weights: (V, J) float64 skinning weights (rows sum to 1).
        lmk_faces_idx: (L,) int64 triangle index of each static landmark, L = 68 or 51.
        lmk_bary_coords: (L, 3) float64 barycentric coordinates of each static landmark.
        dynamic_lmk_faces_idx: (79, 17) int64 or None, FLAME's yaw-dependent contour.
        dynamic_lmk_bary_coords: (79, 17, 3) float64 or None.
        uv_coords: (T, 2) float64 texture coordinates in [0, 1] (v up) or None.
        uv_faces: (F, 3) int64 indices into ``uv_coords`` or None.
        vertex_regions: (V,) int64 index into ``region_names`` or None.
        region_names: names of the region labels.
        expression_names: E names (empty for FLAME, whose components are unnamed).
        albedo_mean: (H, W, 3) float64 linear-RGB albedo texture in [0, 1] or None.
        albedo_basis: (K, H, W, 3) float64 albedo components or None.
        albedo_names: K names of the albedo components.
        name: short human-readable name.
        metadata: free-form JSON-able dict (source, licence, builder version...).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    lbs_weights: np.ndarray
    lmk_faces_idx: np.ndarray
    lmk_bary_coords: np.ndarray
    dynamic_lmk_faces_idx: np.ndarray | None = None
    dynamic_lmk_bary_coords: np.ndarray | None = None
    uv_coords: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    vertex_regions: np.ndarray | None = None
    region_names: tuple[str, ...] = REGION_NAMES
    expression_names: tuple[str, ...] = ()
    albedo_mean: np.ndarray | None = None
    albedo_basis: np.ndarray | None = None
    albedo_names: tuple[str, ...] = ()
    name: str = "face model"
    metadata: dict = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expression(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def n_joints(self) -> int:
        return int(self.parents.shape[0])

    def validate(self, source: str = "face model") -> "FaceModelData":
        """Check every array's shape against the others; raise ``CheckpointError`` naming ``source``."""
        V = self.v_template.shape[0] if self.v_template.ndim == 2 else -1
        J = self.parents.shape[0] if self.parents.ndim == 1 else -1
        F = self.faces.shape[0] if self.faces.ndim == 2 else -1
        expect = {
            "v_template": (V, 3),
            "faces": (F, 3),
            "shapedirs": (V, 3, None),
            "exprdirs": (V, 3, None),
            "posedirs": (V, 3, 9 * (J - 1)),
            "J_regressor": (J, V),
            "lbs_weights": (V, J),
            "lmk_bary_coords": (self.lmk_faces_idx.shape[0], 3),
        }
        for key, shape in expect.items():
            arr = getattr(self, key)
            if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
                raise CheckpointError(f"{source}: '{key}' has shape {arr.shape}, expected {shape} (None = any)")
        if V <= 0 or J <= 0:
            raise CheckpointError(f"{source}: empty template or kinematic tree")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= V):
            raise CheckpointError(f"{source}: face indices outside 0..{V - 1}")
        L = self.lmk_faces_idx.shape[0]
        if L not in (51, 68):
            raise CheckpointError(f"{source}: {L} static landmarks, expected 68 or 51 (+17 dynamic)")
        if L == 51 and self.dynamic_lmk_faces_idx is None:
            raise CheckpointError(f"{source}: 51 static landmarks need the 17-point dynamic contour")
        if self.expression_names and len(self.expression_names) != self.n_expression:
            raise CheckpointError(f"{source}: {len(self.expression_names)} expression names for {self.n_expression} components")
        self._validate_indices(source, F)
        for f in dataclasses.fields(self):
            arr = getattr(self, f.name)
            if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise CheckpointError(f"{source}: '{f.name}' holds NaN or infinite values")
        return self

    def _validate_indices(self, source: str, F: int) -> None:
        """Kinematic tree in topological order; landmark triangles (static and dynamic) inside 0..F-1."""
        p = self.parents
        if p[0] != -1 or any(not 0 <= int(p[j]) < j for j in range(1, p.shape[0])):
            raise CheckpointError(f"{source}: parents {p.tolist()[:16]} is not a kinematic tree "
                                  "(root -1 first, each joint's parent before it)")
        dyn = self.dynamic_lmk_faces_idx
        if dyn is not None:
            bary = self.dynamic_lmk_bary_coords
            if dyn.ndim != 2 or bary is None or bary.shape != dyn.shape + (3,) or dyn.shape[0] == 0:
                raise CheckpointError(f"{source}: dynamic landmarks have shapes {dyn.shape}, "
                                      f"{None if bary is None else bary.shape}; expected (N, 17), (N, 17, 3)")
        for key in ("lmk_faces_idx", "dynamic_lmk_faces_idx"):
            idx = getattr(self, key)
            if idx is not None and idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= F):
                raise CheckpointError(f"{source}: '{key}' refers to triangles outside 0..{F - 1}")
        if self.uv_faces is not None and self.uv_coords is not None and self.uv_faces.size and (
                self.uv_faces.shape != self.faces.shape or self.uv_faces.min() < 0
                or self.uv_faces.max() >= self.uv_coords.shape[0]):
            raise CheckpointError(f"{source}: 'uv_faces' does not index 'uv_coords' triangle by triangle")
        if self.vertex_regions is not None and self.vertex_regions.size and (
                self.vertex_regions.shape != (self.n_vertices,) or self.vertex_regions.min() < 0
                or self.vertex_regions.max() >= len(self.region_names)):
            raise CheckpointError(f"{source}: 'vertex_regions' is not one region index per vertex")

    # ------------------------------------------------------------------ file format

    def save(self, path: str | os.PathLike, dtype: Any = np.float32) -> None:
        """Write rig's ``.npz`` format atomically (floats stored as ``dtype``, ints as int64)."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"format": "rig.face_model", "format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = value.astype(dtype) if value.dtype.kind == "f" else value.astype(np.int64)
            elif value is None:
                continue
            else:
                meta[f.name] = list(value) if isinstance(value, tuple) else value
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaceModelData":
        """Read rig's ``.npz`` format (no pickle); floats come back as float64."""
        path = Path(path)
        with untrusted(str(path), what="not a rig face-model .npz"):
            raw = read_npz(path)
            if "__meta__" not in raw:
                raise CheckpointError(f"{path}: not a rig face-model .npz (no __meta__ entry)")
            meta = json.loads(raw.pop("__meta__").tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.pop("format", None) != "rig.face_model":
                raise CheckpointError(f"{path}: not a rig face-model file")
            meta.pop("format_version", None)
            kwargs = cls._fields_from(raw, meta, str(path))
        try:
            data = cls(**kwargs)
        except TypeError as e:
            raise CheckpointError(f"{path}: incomplete face-model file ({e})") from None
        with untrusted(str(path), what="inconsistent face-model file"):
            return data.validate(str(path))

    @classmethod
    def _fields_from(cls, raw: dict[str, np.ndarray], meta: dict, source: str) -> dict[str, Any]:
        """Constructor arguments from the archive's arrays and its JSON metadata, each type-checked."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in raw.items():
            if k in fields:
                kwargs[k] = v.astype(np.float64) if v.dtype.kind == "f" else v.astype(np.int64)
        for k, v in meta.items():
            if k not in fields:
                continue
            if k == "metadata":
                if not isinstance(v, dict):
                    raise CheckpointError(f"{source}: 'metadata' is not a JSON object")
            elif k == "name":
                if not isinstance(v, str):
                    raise CheckpointError(f"{source}: 'name' is not a string")
            elif not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise CheckpointError(f"{source}: '{k}' is not a list of names")
            kwargs[k] = tuple(v) if isinstance(v, list) else v
        return kwargs
