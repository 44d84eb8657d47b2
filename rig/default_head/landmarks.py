"""Place the iBUG-68 landmark embedding on the default head by rendering it and running dlib.

Procedure (run once, at build time; needs ``dlib`` and ``face_recognition_models``'s 68-point
shape predictor, found with ``importlib.util.find_spec`` without importing the package):

1. Render the neutral template from several near-frontal views (yaw/pitch within a few degrees)
   with rig's rasterizer, smooth Lambert shading and plain region colours (skin, darker lips and
   brows, white eyeballs with a dark iris painted per pixel).
2. Detect the face (HOG) and the 68 points in each view; back-project every point through the
   rasterizer: the triangle under the point and the barycentrics of the exact sub-pixel position.
3. Average each point's 3-D surface positions over the views. The jaw contour (iBUG 0..16) is a
   silhouette-like line whose surface point shifts with the view, so it is taken from the views
   with zero yaw only: a static, frontal-view contour, as usual for non-FLAME models.
4. Enforce left/right symmetry (the hm08 mesh is exactly mirror-symmetric): each point is averaged
   with the mirror image of its iBUG partner, midline points get x = 0.
5. Snap each point to the closest point of the face surface (eyeballs and mouth interior excluded,
   so eye landmarks sit on the eyelid rims and inner-lip landmarks on the lips); then copy each
   pair's first point, mirrored, onto its partner so pairs are exact mirror images.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.errors import InputError
from rig.face_model.data import REGION_NAMES

# iBUG-68 index of each point's left/right partner (midline points map to themselves).
IBUG68_MIRROR = np.array(
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65],
    dtype=np.int64,
)
REGION_COLOURS = {  # linear-ish RGB used only for the detection renders
    "skin": (0.80, 0.58, 0.47), "lips": (0.62, 0.30, 0.30), "eyes": (0.92, 0.92, 0.90),
    "brows": (0.25, 0.17, 0.12), "teeth": (0.85, 0.83, 0.75), "hair": (0.80, 0.58, 0.47),
    "neck": (0.80, 0.58, 0.47),
}


def shape_predictor_path() -> Path:
    """dlib's 68-point model inside the installed ``face_recognition_models`` (not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("placing the default head's landmarks needs 'face_recognition_models' "
                         "(rig's [build] extra: pip install '.[build]' in the rig checkout)")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "models" / "shape_predictor_68_face_landmarks.dat"
        if p.is_file():
            return p
    raise InputError("face_recognition_models has no models/shape_predictor_68_face_landmarks.dat")


@dataclass(frozen=True)
class View:
    """One detection render: image, fragments and the screen-space vertices that made it.

    image: (H, W, 3) uint8; pix_to_face: (H, W) int64; screen: (V, 3) float64 (u, v, depth).
    """

    yaw: float
    pitch: float
    image: np.ndarray
    pix_to_face: np.ndarray
    screen: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (faces counter-clockwise from outside)."""
    fn = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def render_view(vertices: np.ndarray, faces: np.ndarray, regions: np.ndarray, eye_centres: np.ndarray,
                yaw: float, pitch: float, size: int) -> View:
    """Render the head from a camera ``yaw``/``pitch`` radians around the head centre (see module doc)."""
    import torch

    from rig.render.camera import PerspectiveCamera, intrinsics_from_fov, look_at
    from rig.render.rasterize import RasterSettings, interpolate, rasterize

    v = torch.as_tensor(vertices, dtype=torch.float64)
    f = torch.as_tensor(faces, dtype=torch.int64)
    face_part = regions != REGION_NAMES.index("neck")
    centre = torch.as_tensor(0.5 * (vertices[face_part].min(0) + vertices[face_part].max(0)))
    dist = 0.75
    direction = torch.tensor([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    eye = centre + dist * direction
    R, t = look_at(eye, centre)
    K = intrinsics_from_fov(22.0, size, size).unsqueeze(0)
    cam = PerspectiveCamera(K, R, t, size, size)
    screen = cam.project(v).screen()
    frags = rasterize(screen, f, RasterSettings(size, size, cull_backfaces=True))
    normals = torch.as_tensor(vertex_normals(vertices, faces))
    colours = torch.as_tensor(np.asarray([REGION_COLOURS[REGION_NAMES[r]] for r in regions]))
    attrs = torch.cat([normals, colours, v], dim=1)
    px = interpolate(attrs, f, frags)[0]
    n = px[..., 0:3] / px[..., 0:3].norm(dim=-1, keepdim=True).clamp_min(1e-12)
    col = px[..., 3:6]
    pos = px[..., 6:9]
    pix_face = frags.pix_to_face[0]
    # iris + pupil on the eyeballs, from the angle between the pixel's direction and the eye axis (+z)
    eye_face = torch.as_tensor(regions[faces].min(axis=1) == REGION_NAMES.index("eyes"))
    on_eye = (pix_face >= 0) & eye_face[pix_face.clamp_min(0)]
    for c in eye_centres:
        d = pos - torch.as_tensor(c)
        cos = d[..., 2] / d.norm(dim=-1).clamp_min(1e-12)
        near = (d.norm(dim=-1) < 0.02) & on_eye
        col[near & (cos > 0.90)] = torch.tensor([0.35, 0.25, 0.18], dtype=col.dtype)
        col[near & (cos > 0.975)] = torch.tensor([0.05, 0.05, 0.05], dtype=col.dtype)
    light = direction + torch.tensor([0.25, 0.45, 0.0])
    light = light / light.norm()
    shade = 0.25 + 0.75 * (n * light).sum(-1).clamp_min(0.0)
    img = col * shade[..., None]
    img[pix_face < 0] = torch.tensor([0.35, 0.40, 0.50], dtype=img.dtype)
    image = (img.clamp(0, 1) ** (1 / 2.2) * 255 + 0.5).to(torch.uint8).numpy()
    return View(yaw, pitch, np.ascontiguousarray(image), pix_face.numpy(), screen[0].numpy())


def detect_68(image: np.ndarray, detector, predictor) -> np.ndarray | None:
    """(68, 2) float64 pixel coordinates (x right, y down) of the best face, or None."""
    import dlib

    gray = np.ascontiguousarray(image.mean(axis=2).astype(np.uint8))
    dets, scores, _ = detector.run(gray, 1, 0.0)
    if not dets:
        return None
    best = dets[int(np.argmax(scores))]
    shape = predictor(gray, dlib.rectangle(best.left(), best.top(), best.right(), best.bottom()))
    return np.asarray([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)


def back_project(view: View, points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """3-D surface positions (N, 3) of image points (N, 2); NaN where a point hits background.

    dlib reports integer pixel coordinates of a pixel's corner; the point is taken at that pixel's
    centre, and its barycentrics are recomputed in the triangle found there (perspective-correct).
    """
    H, W = view.pix_to_face.shape
    out = np.full((points.shape[0], 3), np.nan)
    for i, (x, y) in enumerate(points):
        col, row = int(np.clip(np.floor(x), 0, W - 1)), int(np.clip(np.floor(y), 0, H - 1))
        fid = int(view.pix_to_face[row, col])
        if fid < 0:
            continue
        tri = view.screen[faces[fid]]  # (3, 3) u, v, depth
        p = np.array([col + 0.5, row + 0.5])
        a, b, c = tri[:, :2]

        def cross2(u, v):
            return u[0] * v[1] - u[1] * v[0]

        area = cross2(b - a, c - a)
        w = np.array([cross2(b - p, c - p), cross2(c - p, a - p), cross2(a - p, b - p)]) / area
        w = w / tri[:, 2]  # perspective-correct
        w = np.clip(w / w.sum(), 0.0, 1.0)
        w = w / w.sum()
        out[i] = w @ vertices[faces[fid]]
    return out


def closest_point_on_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (3,) of the point of triangle abc closest to p (exact, all cases)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab @ ap, ac @ ap
    if d1 <= 0 and d2 <= 0:
        return np.array([1.0, 0.0, 0.0])
    bp = p - b
    d3, d4 = ab @ bp, ac @ bp
    if d3 >= 0 and d4 <= d3:
        return np.array([0.0, 1.0, 0.0])
    vc = d1 * d4 - d3 * d2
    if vc <= 0 and d1 >= 0 and d3 <= 0:
        t = d1 / (d1 - d3)
        return np.array([1.0 - t, t, 0.0])
    cp = p - c
    d5, d6 = ab @ cp, ac @ cp
    if d6 >= 0 and d5 <= d6:
        return np.array([0.0, 0.0, 1.0])
    vb = d5 * d2 - d1 * d6
    if vb <= 0 and d2 >= 0 and d6 <= 0:
        t = d2 / (d2 - d6)
        return np.array([1.0 - t, 0.0, t])
    va = d3 * d6 - d5 * d4
    if va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return np.array([0.0, 1.0 - t, t])
    denom = 1.0 / (va + vb + vc)
    v_, w_ = vb * denom, vc * denom
    return np.array([1.0 - v_ - w_, v_, w_])


def snap_to_surface(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                    allowed_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest surface point among ``allowed_faces`` for each point: (face index (N,), bary (N, 3))."""
    tri = vertices[faces[allowed_faces]]
    centroids = tri.mean(axis=1)
    idx = np.zeros(points.shape[0], dtype=np.int64)
    bary = np.zeros((points.shape[0], 3))
    for i, p in enumerate(points):
        near = np.argsort(np.linalg.norm(centroids - p, axis=1))[:64]
        best = (np.inf, -1, None)
        for k in near:
            w = closest_point_on_triangle(p, *tri[k])
            d = np.linalg.norm(w @ tri[k] - p)
            if d < best[0]:
                best = (d, k, w)
        idx[i], bary[i] = allowed_faces[best[1]], best[2]
    return idx, bary


def mirror_pairs(fidx: np.ndarray, bary: np.ndarray, faces: np.ndarray, vertex_mirror: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Make left/right iBUG partners exact mirror images: each pair's second point (by index) is
    replaced by the mirror of the first, on the mirrored triangle (``vertex_mirror``: (V,) partner
    of each vertex). Midline points are left as they are."""
    lookup = {tuple(sorted(f)): i for i, f in enumerate(faces.tolist())}
    fidx, bary = fidx.copy(), bary.copy()
    for i, j in enumerate(IBUG68_MIRROR):
        if j <= i:
            continue
        mirrored = vertex_mirror[faces[fidx[i]]]  # partner of each corner, in the corner order of i
        k = lookup.get(tuple(sorted(mirrored.tolist())))
        if k is None:
            raise InputError(f"landmark {i}: the mesh has no mirror image of triangle {fidx[i]}")
        order = [list(mirrored).index(c) for c in faces[k]]
        fidx[j], bary[j] = k, bary[i][order]
    return fidx, bary


@dataclass(frozen=True)
class LandmarkEmbedding:
    """iBUG-68 embedding: faces_idx (68,) int64, bary_coords (68, 3); plus how it was derived."""

    faces_idx: np.ndarray
    bary_coords: np.ndarray
    positions: np.ndarray  # (68, 3) metres on the template
    per_view_spread_m: np.ndarray  # (68,) RMS distance of the per-view positions from their mean
    views: tuple[View, ...]
    description: str


def place_landmarks(geo, config) -> LandmarkEmbedding:
    """Derive the iBUG-68 embedding of the default head (see the module docstring).

    geo: ``build_default.GeometryStage``; config: ``build_default.DefaultHeadConfig``.
    """
    try:
        import dlib
    except ImportError:
        raise InputError("placing the default head's landmarks needs 'dlib' "
                         "(rig's [build] extra: pip install '.[build]' in the rig checkout)") from None
    from tqdm import tqdm

    vertices, faces, regions = geo.v_template, geo.selection.faces, geo.vertex_regions
    eye_idx = REGION_NAMES.index("eyes")
    eye_centres = np.stack([geo.joints[3], geo.joints[4]])
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_predictor_path()))
    yaws = (-8.0, -4.0, 0.0, 4.0, 8.0)
    pitches = (-6.0, 0.0, 6.0)
    per_view: list[np.ndarray] = []
    zero_yaw: list[np.ndarray] = []
    views: list[View] = []
    grid = [(y, p) for y in yaws for p in pitches]
    for yaw, pitch in tqdm(grid, desc="landmark views", unit="view", leave=False):
        view = render_view(vertices, faces, regions, eye_centres, np.radians(yaw), np.radians(pitch),
                           config.landmark_image_size)
        pts = detect_68(view.image, detector, predictor)
        views.append(view)
        if pts is None:
            continue
        xyz = back_project(view, pts, vertices, faces)
        per_view.append(xyz)
        if yaw == 0.0:
            zero_yaw.append(xyz)
    if len(per_view) < len(grid) // 2 or not zero_yaw:
        raise InputError(f"dlib found the default head in only {len(per_view)} of {len(grid)} renders")
    stack = np.stack(per_view)
    mean = np.nanmean(stack, axis=0)
    mean[:17] = np.nanmean(np.stack(zero_yaw)[:, :17], axis=0)
    if np.isnan(mean).any():
        raise InputError("some landmarks were never back-projected onto the head")
    spread = np.sqrt(np.nanmean(((stack - mean) ** 2).sum(-1), axis=0))
    mirrored = mean[IBUG68_MIRROR] * np.array([-1.0, 1.0, 1.0])
    sym = 0.5 * (mean + mirrored)
    midline = IBUG68_MIRROR == np.arange(68)
    sym[midline, 0] = 0.0
    exclude = {eye_idx, REGION_NAMES.index("teeth")}
    allowed = np.flatnonzero(~np.isin(regions[faces], list(exclude)).any(axis=1))
    fidx, bary = snap_to_surface(sym, vertices, faces, allowed)
    fidx, bary = mirror_pairs(fidx, bary, faces, geo.mirror)
    positions = np.einsum("nk,nkc->nc", bary, vertices[faces[fidx]])
    desc = (f"iBUG-68 from dlib's 68-point predictor on {len(per_view)} renders (yaw {yaws} deg x pitch "
            f"{pitches} deg, {config.landmark_image_size} px), back-projected through the rasterizer, "
            "averaged (jaw contour 0-16 from the zero-yaw views only), mirror-symmetrised, snapped to the "
            "face surface (eyeballs and mouth interior excluded)")
    return LandmarkEmbedding(fidx, bary, positions, spread, tuple(views), desc)
