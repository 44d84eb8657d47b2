"""Procedural test meshes: UV spheres and a FLAME-sized head stand-in (for tests and benchmarks)."""

from __future__ import annotations

import math

import torch


def uv_sphere(n_rings: int, n_segments: int, radius: float = 1.0, center=(0.0, 0.0, 0.0),
              dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed UV sphere, y up; faces counter-clockwise seen from outside.

    n_rings: latitude rings between the poles (>= 1); n_segments: longitude segments (>= 3).
    Returns vertices (n_rings * n_segments + 2, 3) and faces (2 * n_rings * n_segments, 3) int64.
    """
    if n_rings < 1 or n_segments < 3:
        raise ValueError("uv_sphere needs n_rings >= 1 and n_segments >= 3")
    theta = torch.arange(1, n_rings + 1, dtype=dtype) * (math.pi / (n_rings + 1))  # from +y pole
    phi = torch.arange(n_segments, dtype=dtype) * (2 * math.pi / n_segments)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    ring = torch.stack([st * torch.sin(phi), ct.expand(-1, n_segments), st * torch.cos(phi)], dim=-1).reshape(-1, 3)
    verts = torch.cat([torch.tensor([[0.0, 1.0, 0.0]], dtype=dtype), ring, torch.tensor([[0.0, -1.0, 0.0]], dtype=dtype)])
    verts = verts * radius + torch.as_tensor(center, dtype=dtype)
    faces = []
    top, bottom = 0, n_rings * n_segments + 1

    def idx(r, s):
        return 1 + r * n_segments + (s % n_segments)

    for s in range(n_segments):
        faces.append((top, idx(0, s), idx(0, s + 1)))
    for r in range(n_rings - 1):
        for s in range(n_segments):
            a, b, c, d = idx(r, s), idx(r, s + 1), idx(r + 1, s), idx(r + 1, s + 1)
            faces.append((a, c, b))
            faces.append((b, c, d))
    for s in range(n_segments):
        faces.append((bottom, idx(n_rings - 1, s + 1), idx(n_rings - 1, s)))
    return verts, torch.tensor(faces, dtype=torch.int64)


def flame_sized_mesh(seed: int = 0, radius: float = 0.1, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A head-sized (0.1 m) bumpy sphere with FLAME's counts: 5023 vertices, 9976 triangles.

    A 57 x 88 UV sphere (5018 vertices) plus 5 unused vertices, with its 56 bottom-cap triangles
    and 'neck' opening removed down to 9976 triangles; radial noise from ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    verts, faces = uv_sphere(57, 88, radius, dtype=dtype)
    bump = 1.0 + 0.03 * torch.sin(7 * verts[:, :1] / radius) * torch.cos(5 * verts[:, 1:2] / radius)
    bump = bump + 0.01 * torch.rand(verts.shape[0], 1, generator=g, dtype=dtype)
    verts = verts * bump
    verts = torch.cat([verts, verts[:5].clone()])
    faces = faces[: 9976]
    return verts, faces
