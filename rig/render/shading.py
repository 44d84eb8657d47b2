"""Shading: vertex normals, texture sampling, and Lambertian shading under 2nd-order SH lighting.

Normals: unit vectors pointing out of the surface (faces are counter-clockwise seen from outside),
area-weighted per vertex. Lighting is expressed in the frame the normals are given in; rig renders
use camera space (OpenCV: x right, y down, z forward), so a surface facing the camera has n_z < 0.

Spherical harmonics (real, orthonormal, 9 terms; order and constants):
    k: 0 Y00 = 0.282095                     (1/(2 sqrt(pi)))
       1 Y1-1 = 0.488603 * y   2 Y10 = 0.488603 * z   3 Y11 = 0.488603 * x   (sqrt(3/(4 pi)))
       4 Y2-2 = 1.092548 * x*y   5 Y2-1 = 1.092548 * y*z   6 Y20 = 0.315392 * (3 z^2 - 1)
       7 Y21 = 1.092548 * x*z    8 Y22 = 0.546274 * (x^2 - y^2)
``sh`` (B, 9, 3) holds, per colour channel, the SH coefficients L_k of the incident radiance.
Lambertian outgoing radiance is ``albedo / pi * E(n)`` with irradiance ``E(n) = sum_k A_l L_k Y_k(n)``
(Ramamoorthi & Hanrahan 2001; A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4), i.e.

    rgb = albedo * sum_k L_k * (A_l / pi) * Y_k(n)

so a uniform environment of radiance 1 (L_0 = 2 sqrt(pi)) gives rgb = albedo, and a directional
light of irradiance I from unit direction d (pointing towards the light) has L_k = pi * I * Y_k(d)
and gives approximately ``albedo * I * max(0, n . d)``.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from rig.errors import InputError, ShapeError

SH_CONSTANTS = (0.28209479177387814, 0.4886025119029199, 1.0925484305920792, 0.31539156525252005,
                0.5462742152960396)
# A_l / pi per coefficient: 1 for l=0, 2/3 for l=1, 1/4 for l=2.
MAX_SH_FILE_BYTES = 1 << 20  # 27 numbers in any of the accepted formats fit in far less

LAMBERT_FACTORS = (1.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 0.25, 0.25, 0.25, 0.25, 0.25)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit vectors -> (..., 9) real SH values Y_k (order in the module docstring)."""
    x, y, z = normals.unbind(-1)
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    return torch.stack([
        torch.full_like(x, c0), c1 * y, c1 * z, c1 * x,
        c2 * x * y, c2 * y * z, c3 * (3.0 * z * z - 1.0), c2 * x * z, c4 * (x * x - y * y),
    ], dim=-1)


def sh_shading(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Lambertian shading factor ``sum_k L_k (A_l/pi) Y_k(n)``.

    normals: (B, ..., 3) unit normals; sh: (B, 9, C) or (9, C). Returns (B, ..., C).
    """
    if sh.ndim == 2:
        sh = sh.unsqueeze(0)
    if sh.ndim != 3 or sh.shape[1] != 9:
        raise ShapeError(f"sh_shading: sh must be (B, 9, C) or (9, C), got {tuple(sh.shape)}")
    B = normals.shape[0]
    if sh.shape[0] not in (1, B):
        raise ShapeError(f"sh_shading: sh batch {sh.shape[0]} vs normals batch {B}")
    factors = torch.tensor(LAMBERT_FACTORS, dtype=normals.dtype, device=normals.device)
    basis = sh_basis(normals) * factors  # (B, ..., 9)
    flat = basis.reshape(B, -1, 9)
    out = flat @ sh.to(normals.dtype).expand(B, -1, -1)  # (B, N, C)
    return out.reshape(*normals.shape[:-1], sh.shape[-1])


def sh_shading_points(normals: torch.Tensor, sh: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
    """``sh_shading`` for a flat list of points from several images (e.g. only the covered pixels).

    normals: (N, 3) unit normals; sh: (B, 9, C) or (9, C); batch_index: (N,) int64 image of each
    point. Returns (N, C).
    """
    if sh.ndim == 2:
        sh = sh.unsqueeze(0)
    if sh.ndim != 3 or sh.shape[1] != 9:
        raise ShapeError(f"sh_shading_points: sh must be (B, 9, C) or (9, C), got {tuple(sh.shape)}")
    factors = torch.tensor(LAMBERT_FACTORS, dtype=normals.dtype, device=normals.device)
    weighted = sh.to(normals.dtype) * factors[None, :, None]  # fold A_l / pi into the coefficients
    basis = sh_basis(normals)  # (N, 9)
    if weighted.shape[0] == 1:
        return basis @ weighted[0]
    return torch.bmm(basis.unsqueeze(1), weighted.index_select(0, batch_index)).squeeze(1)


def shade_lambert(albedo: torch.Tensor, normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """rgb (B, ..., C) = albedo (B, ..., C) * ``sh_shading(normals, sh)``; radiance, linear RGB."""
    return albedo * sh_shading(normals, sh)


def sh_from_lights(ambient=(1.0, 1.0, 1.0), lights=(), dtype=torch.float64) -> torch.Tensor:
    """(9, 3) SH coefficients of a uniform ambient radiance plus directional lights.

    ambient: RGB shading a surface gets from every direction (rgb = albedo * ambient).
    lights: sequence of (direction (3,), rgb irradiance (3,)); direction points from the surface
        towards the light, in the normals' frame (camera space: -z is towards the camera).
    """
    amb = torch.as_tensor(ambient, dtype=dtype).reshape(3)
    sh = torch.zeros(9, 3, dtype=dtype)
    sh[0] = amb * (2.0 * math.sqrt(math.pi))
    for direction, colour in lights:
        d = torch.as_tensor(direction, dtype=dtype).reshape(3)
        n = d.norm()
        if not n > 0:
            raise InputError(f"sh_from_lights: light direction must be non-zero, got {d.tolist()}")
        y = sh_basis(d / n)  # (9,)
        sh += math.pi * y[:, None] * torch.as_tensor(colour, dtype=dtype).reshape(1, 3)
    return sh


def _dir(x, y, z):
    return (x, y, z)


# Camera-space directions towards the light (x right, y down, z away from the viewer).
LIGHT_PRESETS = {
    "ambient": dict(ambient=(1.0, 1.0, 1.0), lights=()),
    "frontal": dict(ambient=(0.35, 0.35, 0.35), lights=((_dir(0.0, 0.0, -1.0), (0.7, 0.7, 0.7)),)),
    "studio": dict(ambient=(0.25, 0.25, 0.26), lights=(
        (_dir(-0.6, -0.5, -0.8), (0.65, 0.63, 0.6)),   # key: upper left of the image
        (_dir(0.8, -0.1, -0.6), (0.25, 0.26, 0.28)),   # fill: right
        (_dir(0.0, -0.8, 0.6), (0.15, 0.15, 0.15)),    # rim: from above and behind
    )),
    "left": dict(ambient=(0.25, 0.25, 0.25), lights=((_dir(-1.0, -0.2, -0.5), (0.85, 0.85, 0.85)),)),
    "right": dict(ambient=(0.25, 0.25, 0.25), lights=((_dir(1.0, -0.2, -0.5), (0.85, 0.85, 0.85)),)),
    "top": dict(ambient=(0.25, 0.25, 0.25), lights=((_dir(0.0, -1.0, -0.4), (0.85, 0.85, 0.85)),)),
}


def light_preset(name: str, dtype=torch.float64) -> torch.Tensor:
    """(9, 3) SH coefficients of a named preset (``LIGHT_PRESETS``: ambient, frontal, studio, left,
    right, top; directions in camera space, 'left' = image left)."""
    if name not in LIGHT_PRESETS:
        raise InputError(f"unknown light preset {name!r}; choose from {', '.join(LIGHT_PRESETS)}")
    return sh_from_lights(**LIGHT_PRESETS[name], dtype=dtype)


def _json_kind(value) -> str:
    return {dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def load_sh(path) -> torch.Tensor:
    """Read (9, 3) SH coefficients from a .npy / .txt / .json file (27 numbers, k-major)."""
    import json

    import numpy as np

    from rig.errors import CheckpointError
    from rig.io.guard import untrusted
    from rig.io.npy import read_npy

    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: SH file not found")
    if os.path.getsize(path) > MAX_SH_FILE_BYTES:
        raise InputError(f"{path}: {os.path.getsize(path)} bytes is far too large for 27 SH coefficients")
    try:
        # Any failure parsing the user's file (a malformed .npy header, deep JSON, bad text) is an
        # InputError naming it.
        with untrusted(path, InputError, what="cannot read SH coefficients"):
            if path.endswith(".npy"):
                arr = read_npy(path)
            elif path.endswith(".json"):
                with open(path, encoding="utf-8") as f:
                    raw = json.load(f)
                if not isinstance(raw, list):
                    raise InputError(f"{path}: expected a JSON list of 27 SH numbers (9 x RGB), got a JSON "
                                     f"{_json_kind(raw)}")
                arr = np.asarray(raw, dtype=np.float64)
            else:
                arr = np.loadtxt(path, dtype=np.float64)
            arr = np.asarray(arr, dtype=np.float64)
    except CheckpointError as e:
        raise InputError(str(e)) from None
    from rig.io.values import check_values
    from rig.limits import SH_ABS

    if arr.size != 27:
        raise InputError(f"{path}: expected 27 SH coefficients (9 x RGB), got {arr.size}")
    check_values(arr.reshape(9, 3), path, SH_ABS, "SH coefficient", "9 coefficients x RGB")
    return torch.as_tensor(arr.reshape(9, 3))


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) vertices, (F, 3) faces -> (B, F, 3) unnormalised normals (length = 2 * area)."""
    v0, v1, v2 = vertices[:, faces[:, 0]], vertices[:, faces[:, 1]], vertices[:, faces[:, 2]]
    return torch.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """Area-weighted unit vertex normals. vertices (B, V, 3) or (V, 3); faces (F, 3) -> (B, V, 3)."""
    if vertices.ndim == 2:
        vertices = vertices.unsqueeze(0)
    faces = faces.to(device=vertices.device, dtype=torch.int64)
    fn = face_normals(vertices, faces)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n = n.index_add(1, faces[:, k], fn)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(eps)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear texture lookup, differentiable w.r.t. texture and uv.

    texture: (B, Ht, Wt, C) or (Ht, Wt, C); row 0 is the top of the image.
    uv: (B, H, W, 2) in [0, 1], v up (u = 0 left edge, v = 0 bottom edge of the texture); texel
        centres at ((j + 0.5) / Wt, 1 - (i + 0.5) / Ht); coordinates outside clamp to the border.
    Returns (B, H, W, C).
    """
    if texture.ndim == 3:
        texture = texture.unsqueeze(0)
    if texture.ndim != 4 or uv.ndim != 4 or uv.shape[-1] != 2:
        raise ShapeError(f"sample_texture: texture (B,Ht,Wt,C) and uv (B,H,W,2) expected, got "
                         f"{tuple(texture.shape)} and {tuple(uv.shape)}")
    B = uv.shape[0]
    tex = texture.permute(0, 3, 1, 2).to(uv.dtype).expand(B, -1, -1, -1)
    grid = torch.stack([uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0], dim=-1)
    out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)
