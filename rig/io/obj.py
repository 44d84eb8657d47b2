"""Wavefront OBJ: an atomic writer for posed meshes and a minimal reader (for tests and tools).

Vertices are written in metres with ``%.9g`` (9 significant digits: float32 meshes round-trip
exactly, float64 ones to ~1e-9 relative); faces are 1-based. With UVs the file carries ``vt``
lines and ``f v/vt`` corners.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rig.errors import InputError, ShapeError
from rig.io.atomic import write_text_atomic


class ObjMesh(NamedTuple):
    """A triangle mesh read from OBJ: ``vertices`` (V, 3) float64, ``faces`` (F, 3) int64 (0-based),
    ``uv_coords`` (T, 2) float64 or None, ``uv_faces`` (F, 3) int64 or None."""

    vertices: np.ndarray
    faces: np.ndarray
    uv_coords: np.ndarray | None
    uv_faces: np.ndarray | None


def format_obj(vertices: np.ndarray, faces: np.ndarray, uv_coords: np.ndarray | None = None,
               uv_faces: np.ndarray | None = None, header: str | None = None) -> str:
    """OBJ text for one mesh. Shapes as in ``ObjMesh``; indices are 0-based on input."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ShapeError(f"write_obj: expected vertices (V, 3) and faces (F, 3), got {vertices.shape}, {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ShapeError(f"write_obj: face indices outside 0..{len(vertices) - 1}")
    with_uv = uv_coords is not None and uv_faces is not None
    if with_uv:
        uv_coords = np.asarray(uv_coords, dtype=np.float64)
        uv_faces = np.asarray(uv_faces, dtype=np.int64)
        if uv_coords.ndim != 2 or uv_coords.shape[1] != 2 or uv_faces.shape != faces.shape:
            raise ShapeError(f"write_obj: expected uv_coords (T, 2) and uv_faces {faces.shape}, got {uv_coords.shape}, {uv_faces.shape}")
        if uv_faces.size and (uv_faces.min() < 0 or uv_faces.max() >= len(uv_coords)):
            raise ShapeError(f"write_obj: uv indices outside 0..{len(uv_coords) - 1}")
    buf = io.StringIO()
    if header:
        for line in header.splitlines():
            buf.write(f"# {line}\n")
    np.savetxt(buf, vertices, fmt="v %.9g %.9g %.9g")
    if with_uv:
        np.savetxt(buf, uv_coords, fmt="vt %.9g %.9g")
        corners = np.stack([faces + 1, uv_faces + 1], axis=-1).reshape(len(faces), 6)
        np.savetxt(buf, corners, fmt="f %d/%d %d/%d %d/%d")
    else:
        np.savetxt(buf, faces + 1, fmt="f %d %d %d")
    return buf.getvalue()


def write_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, uv_coords: np.ndarray | None = None,
              uv_faces: np.ndarray | None = None, header: str | None = None) -> None:
    """Write a triangle mesh (metres) as OBJ atomically; see ``format_obj``."""
    write_text_atomic(path, format_obj(vertices, faces, uv_coords, uv_faces, header))


def read_obj(path: str | os.PathLike) -> ObjMesh:
    """Read ``v``, ``vt`` and triangular ``f`` lines (``v``, ``v/vt``, ``v/vt/vn``, ``v//vn``); 0-based out.

    Polygons with more than 3 corners are fan-triangulated. Other statements are ignored.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read OBJ ({e})") from None
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    faces: list[list[int]] = []
    uv_faces: list[list[int]] = []
    try:
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                uvs.append([float(x) for x in parts[1:3]])
            elif parts[0] == "f":
                corners = [c.split("/") for c in parts[1:]]
                v_idx = [_obj_index(c[0], len(verts)) for c in corners]
                t_idx = [_obj_index(c[1], len(uvs)) if len(c) > 1 and c[1] else -1 for c in corners]
                for k in range(1, len(corners) - 1):
                    faces.append([v_idx[0], v_idx[k], v_idx[k + 1]])
                    uv_faces.append([t_idx[0], t_idx[k], t_idx[k + 1]])
    except (ValueError, IndexError) as e:
        raise InputError(f"{path}: malformed OBJ line ({e})") from None
    uv_f = np.asarray(uv_faces, dtype=np.int64).reshape(-1, 3)
    has_uv = bool(uvs) and len(uv_f) > 0 and uv_f.min() >= 0
    return ObjMesh(np.asarray(verts, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3),
                   np.asarray(uvs, dtype=np.float64).reshape(-1, 2) if has_uv else None, uv_f if has_uv else None)


def _obj_index(token: str, count: int) -> int:
    i = int(token)
    return i - 1 if i > 0 else count + i  # negative indices count back from the latest element
