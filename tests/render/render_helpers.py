"""Shared test helpers for the renderer: random meshes and an independent brute-force ray caster."""

from __future__ import annotations

import torch


def random_screen_mesh(seed: int, B: int, V: int, F: int, H: int, W: int, dtype=torch.float64):
    """Random triangles scattered over (and a little beyond) an H x W image, depths in [0.5, 2.5]."""
    g = torch.Generator().manual_seed(seed)
    screen = torch.rand(B, V, 3, generator=g, dtype=dtype)
    screen[..., 0] = screen[..., 0] * W * 1.2 - 0.1 * W
    screen[..., 1] = screen[..., 1] * H * 1.2 - 0.1 * H
    screen[..., 2] = screen[..., 2] * 2.0 + 0.5
    faces = torch.randint(0, V, (F, 3), generator=g)
    return screen, faces


def random_world_soup(seed: int, n_tris: int, dtype=torch.float64):
    """Small random triangles in a 0.3 m box around the origin: (n_tris*3, 3) vertices, (n_tris, 3) faces."""
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(n_tris, 1, 3, generator=g, dtype=dtype) - 0.5) * 0.3
    offsets = (torch.rand(n_tris, 3, 3, generator=g, dtype=dtype) - 0.5) * 0.12
    verts = (centres + offsets).reshape(-1, 3)
    faces = torch.arange(n_tris * 3).reshape(n_tris, 3)
    return verts, faces


def ray_cast_depth(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                   height: int, width: int, chunk: int = 4096):
    """Moller-Trumbore per pixel centre, written independently of the rasterizer.

    vertices (V, 3) world, K/R (3, 3), t (3,). Returns (face (H, W) int64 -1 = miss, depth (H, W)
    camera z of the nearest hit, +inf = miss).
    """
    vertices, K, R, t = (x.to(torch.float64) for x in (vertices, K, R, t))
    cam_v = vertices @ R.T + t  # rays start at the camera centre = origin in camera space
    jj, ii = torch.meshgrid(torch.arange(width, dtype=torch.float64), torch.arange(height, dtype=torch.float64),
                            indexing="xy")
    pix = torch.stack([jj + 0.5, ii + 0.5, torch.ones_like(jj)], dim=-1).reshape(-1, 3)
    dirs = pix @ torch.linalg.inv(K).T  # z component 1, so the ray parameter equals camera z
    tri = cam_v[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    best_t = torch.full((dirs.shape[0],), float("inf"), dtype=torch.float64)
    best_f = torch.full((dirs.shape[0],), -1, dtype=torch.int64)
    for s in range(0, dirs.shape[0], chunk):
        d = dirs[s:s + chunk, None, :]
        p = torch.cross(d.expand(-1, e2.shape[0], -1), e2[None].expand(d.shape[0], -1, -1), dim=-1)
        det = (e1[None] * p).sum(-1)
        inv = 1.0 / det
        tv = -tri[None, :, 0]  # origin - v0
        u = (tv * p).sum(-1) * inv
        q = torch.cross(tv, e1[None].expand_as(tv), dim=-1)
        v = (d * q).sum(-1) * inv
        tt = (e2[None] * q).sum(-1) * inv
        hit = (det.abs() > 1e-18) & (u >= 0) & (v >= 0) & (u + v <= 1) & (tt > 0)
        tt = torch.where(hit, tt, torch.full_like(tt, float("inf")))
        val, arg = tt.min(dim=1)
        best_t[s:s + chunk] = val
        best_f[s:s + chunk] = torch.where(torch.isfinite(val), arg, torch.full_like(arg, -1))
    return best_f.reshape(height, width), best_t.reshape(height, width)
