"""Per-vertex region labels of the default head (``REGION_NAMES`` of ``rig.face_model.data``).

Sources, in order of precedence (later rules overwrite earlier ones):
    neck   below a line from just under the chin to the skull base (seen from the side), or
           skinned mostly to the neck / spine bones in MPFB2's weights;
    hair   the scalp: above a hairline that runs from the top of the forehead down behind the ears
           to the nape (a geometric rule in the head frame; MakeHuman has no scalp group);
    brows  a band above each eye (geometric rule around the eyeball centres);
    lips   MPFB2's lips UV mask (``mpfb2/textures/mpfb_lips.jpg``) sampled at the vertex UVs;
    eyes   the eyeball helpers; teeth: the teeth helpers and the tongue (the mouth interior).
Everything else is skin.
"""

from __future__ import annotations

import numpy as np

from rig.face_model.data import JOINT_NAMES, REGION_NAMES

_NECK_BONES = ("neck01", "neck02", "spine01", "spine02", "spine03", "clavicle.L", "clavicle.R",
               "shoulder01.L", "shoulder01.R")


def uv_mask_at_vertices(mask: np.ndarray, uv_coords: np.ndarray, uv_faces: np.ndarray, faces: np.ndarray,
                        n_vertices: int) -> np.ndarray:
    """Largest value of a UV-space mask over all texture coordinates of each vertex.

    mask: (H, W) float in [0, 1], row 0 = top (v = 1). Returns (n_vertices,) float64.
    """
    H, W = mask.shape
    cols = np.clip((uv_coords[:, 0] * W).astype(np.int64), 0, W - 1)
    rows = np.clip(((1.0 - uv_coords[:, 1]) * H).astype(np.int64), 0, H - 1)
    per_uv = mask[rows, cols]
    out = np.zeros(n_vertices)
    np.maximum.at(out, faces.reshape(-1), per_uv[uv_faces.reshape(-1)])
    return out


def vertex_regions(src, sel, v_template: np.ndarray, lbs_weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V,) int64 region index per head vertex (see the module docstring for the rules).

    src: ``build_default.Sources``; sel: ``build_default.HeadSelection``; v_template (V, 3) metres
    (root at the origin); lbs_weights (V, 5) and joints (5, 3) of the template (FLAME order).
    """
    from PIL import Image

    head = sel.src_vertices
    V = head.size
    R = {name: i for i, name in enumerate(REGION_NAMES)}
    labels = np.full(V, R["skin"], dtype=np.int64)
    groups = src.vertex_groups
    in_group = lambda g: np.isin(head, groups[g])  # noqa: E731

    # neck: skinning says the vertex belongs to the neck rather than the head
    sw = src.skin_weights
    neckish = sum(sw[b][head] for b in _NECK_BONES if b in sw)
    total = sum(w[head] for w in sw.values())
    labels[neckish > 0.5 * np.maximum(total, 1e-12)] = R["neck"]

    # below the chin-to-skull-base line (side view); the chin is the lowest midline vertex in front
    # of the jaw hinge that the jaw bone carries
    jaw_w = lbs_weights[:, JOINT_NAMES.index("jaw")]
    front = (jaw_w > 0.5) & (np.abs(v_template[:, 0]) < 0.01) & (v_template[:, 2] > joints[2, 2] + 0.03)
    chin = v_template[front][np.argmin(v_template[front, 1])]
    p0 = np.array([chin[2] - 0.012, chin[1] - 0.004])  # (z, y) just under the chin
    p1 = np.array([joints[1, 2] - 0.08, joints[1, 1] - 0.012])  # behind and below the skull base
    t = (v_template[:, 2] - p0[0]) / (p1[0] - p0[0])
    line_y = p0[1] + t * (p1[1] - p0[1])
    labels[(v_template[:, 1] < line_y) & (v_template[:, 2] < chin[2])] = R["neck"]

    eye_l = v_template[in_group("helper-l-eye")].mean(axis=0)
    eye_r = v_template[in_group("helper-r-eye")].mean(axis=0)
    eye_y, eye_z, eye_dx = 0.5 * (eye_l[1] + eye_r[1]), 0.5 * (eye_l[2] + eye_r[2]), 0.5 * (eye_l[0] - eye_r[0])
    x, y, z = v_template[:, 0], v_template[:, 1] - eye_y, v_template[:, 2] - eye_z
    body = ~np.isin(head, np.concatenate([groups[g] for g in
                                          ("helper-l-eye", "helper-r-eye", "helper-upper-teeth",
                                           "helper-lower-teeth", "helper-tongue")]))

    # scalp: the hairline height (relative to the eyes) as a function of depth (relative to the eyes)
    hairline = np.interp(z, [-0.20, -0.13, -0.09, -0.05, 0.0], [-0.075, -0.045, 0.02, 0.06, 0.065])
    labels[body & (y > hairline) & (labels != R["neck"])] = R["hair"]

    # brows: an arched band above each eyeball centre, on the front of the face
    dx = np.abs(x) - eye_dx  # + towards the temple
    t = np.clip(dx / 0.026, -1.0, 1.0)
    centre = 0.0185 + 0.004 * (1.0 - t**2) - 0.003 * np.maximum(t, 0.0)
    half_width = 0.006 - 0.002 * np.maximum(t, 0.0)
    brow = body & (dx > -0.017) & (dx < 0.027) & (np.abs(y - centre) < half_width) & (z > -0.035)
    labels[brow] = R["brows"]

    lips_img = Image.open(src.data_dir / "mpfb2" / "textures" / "mpfb_lips.jpg").convert("L")
    lips_mask = np.asarray(lips_img, dtype=np.float64) / 255.0
    lips = uv_mask_at_vertices(lips_mask, sel.uv_coords, sel.uv_faces, sel.faces, V) > 0.5
    labels[body & lips] = R["lips"]

    labels[in_group("helper-l-eye") | in_group("helper-r-eye")] = R["eyes"]
    labels[in_group("helper-upper-teeth") | in_group("helper-lower-teeth") | in_group("helper-tongue")] = R["teeth"]
    return labels
