"""A landmark-only copy of a face model: the same 68 landmarks and joints from a few hundred vertices.

Fitting needs only the iBUG-68 landmarks of the posed model, which lie on a few triangles (the
51 static ones plus FLAME's 79x17 contour table). ``landmark_submodel`` keeps just the vertices of
those triangles and adds the 5 joints as extra "vertices" whose blendshapes are the regressed
ones (``J_regressor @ shapedirs``), so that the joints of the small model equal the full model's
exactly (FLAME regresses joints from the shaped, unposed mesh, which is linear in the
coefficients). The result is an ordinary ``FaceModelData``, posed by the same ``FaceModel``
forward pass, and an optimiser step costs microseconds instead of milliseconds on a 10k-vertex
head. ``tests/track/test_landmark_model.py`` checks it against the full model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rig.face_model.data import FaceModelData


def landmark_submodel(data: FaceModelData) -> FaceModelData:
    """The smallest ``FaceModelData`` with the same landmarks and joints as ``data`` (see module doc).

    Vertices: the corners of every landmark triangle, then one per joint. Triangles: only the
    landmark triangles, renumbered; the embeddings are remapped to them.
    """
    tri_ids = [data.lmk_faces_idx.ravel()]
    if data.dynamic_lmk_faces_idx is not None:
        tri_ids.append(data.dynamic_lmk_faces_idx.ravel())
    used_tris = np.unique(np.concatenate(tri_ids))
    tri_map = np.full(data.faces.shape[0], -1, np.int64)
    tri_map[used_tris] = np.arange(len(used_tris))

    used_verts = np.unique(data.faces[used_tris].ravel())
    vert_map = np.full(data.n_vertices, -1, np.int64)
    vert_map[used_verts] = np.arange(len(used_verts))
    faces = vert_map[data.faces[used_tris]]

    J = data.n_joints
    Jr = data.J_regressor
    joint_template = Jr @ data.v_template                         # (J, 3)
    joint_shapedirs = np.einsum("jv,vck->jck", Jr, data.shapedirs)  # (J, 3, S)
    joint_exprdirs = np.einsum("jv,vck->jck", Jr, data.exprdirs)
    n_sub = len(used_verts)
    joint_weights = np.zeros((J, J))
    joint_weights[:, 0] = 1.0  # never used for landmarks; any valid skinning row will do

    J_regressor = np.zeros((J, n_sub + J))
    J_regressor[np.arange(J), n_sub + np.arange(J)] = 1.0

    return dataclasses.replace(
        data,
        v_template=np.concatenate([data.v_template[used_verts], joint_template]),
        faces=faces,
        shapedirs=np.concatenate([data.shapedirs[used_verts], joint_shapedirs]),
        exprdirs=np.concatenate([data.exprdirs[used_verts], joint_exprdirs]),
        posedirs=np.concatenate([data.posedirs[used_verts], np.zeros((J, 3, data.posedirs.shape[2]))]),
        J_regressor=J_regressor,
        lbs_weights=np.concatenate([data.lbs_weights[used_verts], joint_weights]),
        lmk_faces_idx=tri_map[data.lmk_faces_idx],
        dynamic_lmk_faces_idx=None if data.dynamic_lmk_faces_idx is None else tri_map[data.dynamic_lmk_faces_idx],
        uv_coords=None,
        uv_faces=None,
        vertex_regions=None,
        albedo_mean=None,
        albedo_basis=None,
        albedo_names=(),
        name=f"{data.name} (landmarks only)",
    ).validate(f"landmark submodel of {data.name}")
