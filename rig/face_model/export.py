"""Posed meshes to files: the library side of ``rig mesh``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rig.face_model.model import FaceModel
from rig.face_model.params import RigParams
from rig.io.obj import write_obj


def sequence_paths(output: str | os.PathLike, count: int) -> list[Path]:
    """``OUT.obj`` for one frame; ``OUT_0000.obj``, ``OUT_0001.obj``, ... for several."""
    output = Path(output)
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i:04d}{output.suffix}") for i in range(count)]


@torch.no_grad()
def write_posed_obj(face_model: FaceModel, params: RigParams, output: str | os.PathLike) -> list[Path]:
    """Pose ``face_model`` with each of the B parameter sets and write one OBJ per set (metres, with
    the model's UVs when it has them). Returns the paths written."""
    vertices = face_model(params).vertices.double().cpu().numpy()
    d = face_model.data
    paths = sequence_paths(output, len(vertices))
    for path, v in zip(paths, vertices):
        write_obj(path, v, d.faces, d.uv_coords, d.uv_faces, header=f"rig mesh: {d.name}, metres, y up, face looks along +z")
    return paths
