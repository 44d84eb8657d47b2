"""Pure-PyTorch visibility pass: the specification the C++ kernel must match bit for bit.

Per pixel (row i, col j), centre ``p = (j + 0.5, i + 0.5)``, and per triangle with screen vertices
``(x_k, y_k, z_k)`` (pixels, pixels, camera depth), all arithmetic in float64 in exactly this order:

    area = (x1-x0)*(y2-y0) - (x2-x0)*(y1-y0)
    w0   = (x1-px)*(y2-py) - (x2-px)*(y1-py)
    w1   = (x2-px)*(y0-py) - (x0-px)*(y2-py)
    w2   = (x0-px)*(y1-py) - (x1-px)*(y0-py)
    b_k  = w_k * (1/area)                        screen-space barycentrics
    inside  <=>  b0 >= 0 and b1 >= 0 and b2 >= 0
    perspective:  q_k = b_k * (1/z_k);  depth = 1/((q0 + q1) + q2);  bary_k = q_k * depth
    orthographic: depth = b0*z0 + b1*z1 + b2*z2;  bary_k = b_k

A triangle is skipped when ``|area| <= DEGENERATE_AREA`` (pixels^2), when any vertex has
``z < near`` or a non-finite coordinate (near-plane crossing triangles are rejected whole, never
clipped), and, with ``cull_backfaces``, when ``area > 0`` (in y-down pixel coordinates a triangle
that is counter-clockwise seen from outside and faces the camera has negative area).
The winner per pixel has the smallest depth; equal depths go to the smaller face index.
"""

from __future__ import annotations

import torch

DEGENERATE_AREA = 1e-12
BOUNDS_SLACK = 1e-6


def triangle_pixel_bounds(xs: torch.Tensor, ys: torch.Tensor, height: int, width: int):
    """Pixel bounding boxes (inclusive): the pixels whose centres lie within the triangle's
    bounding box grown by ``BOUNDS_SLACK`` pixels (so rounding never drops a pixel the inside test
    would accept).

    xs, ys: (F, 3) float64 pixel coordinates. Returns int64 (F,) j0, j1, i0, i1, clamped to the image
    (j1 < j0 or i1 < i0 means empty).
    """
    j0 = torch.ceil(xs.min(dim=1).values - 0.5 - BOUNDS_SLACK).clamp(0, width)
    j1 = torch.floor(xs.max(dim=1).values - 0.5 + BOUNDS_SLACK).clamp(-1, width - 1)
    i0 = torch.ceil(ys.min(dim=1).values - 0.5 - BOUNDS_SLACK).clamp(0, height)
    i1 = torch.floor(ys.max(dim=1).values - 0.5 + BOUNDS_SLACK).clamp(-1, height - 1)
    return j0.long(), j1.long(), i0.long(), i1.long()


def valid_triangles(v: torch.Tensor, near: float, cull_backfaces: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """v: (F, 3, 3) float64 screen vertices. Returns (valid (F,) bool, area (F,) float64)."""
    x0, y0 = v[:, 0, 0], v[:, 0, 1]
    x1, y1 = v[:, 1, 0], v[:, 1, 1]
    x2, y2 = v[:, 2, 0], v[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    valid = torch.isfinite(v).all(dim=(1, 2)) & (v[:, :, 2] >= near).all(dim=1) & (area.abs() > DEGENERATE_AREA)
    if cull_backfaces:
        valid &= area < 0
    return valid, area


def rasterize_visibility_ref(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                             perspective: bool = True, cull_backfaces: bool = False, near: float = 1e-4,
                             max_candidates: int = 1 << 21):
    """Visibility pass, vectorised over (triangle, pixel) candidate pairs.

    screen: (B, V, 3) vertices as (u, v, depth); faces: (F, 3) int64.
    Returns pix_to_face (B, H, W) int64 (-1 background), bary (B, H, W, 3) float64
    (perspective-correct, 0 in background), depth (B, H, W) float64 (+inf in background).
    """
    B = screen.shape[0]
    dev = screen.device
    screen = screen.detach().to(torch.float64)
    faces = faces.to(device=dev, dtype=torch.int64)
    n_pix = height * width
    pix_to_face = torch.full((B, n_pix), -1, dtype=torch.int64, device=dev)
    bary_out = torch.zeros((B, n_pix, 3), dtype=torch.float64, device=dev)
    depth_out = torch.full((B, n_pix), float("inf"), dtype=torch.float64, device=dev)
    if faces.shape[0] == 0:
        return (pix_to_face.view(B, height, width), bary_out.view(B, height, width, 3),
                depth_out.view(B, height, width))
    for b in range(B):
        tri = screen[b][faces]  # (F, 3, 3)
        valid, area = valid_triangles(tri, near, cull_backfaces)
        j0, j1, i0, i1 = triangle_pixel_bounds(tri[:, :, 0], tri[:, :, 1], height, width)
        nx = (j1 - j0 + 1).clamp_min(0)
        ny = (i1 - i0 + 1).clamp_min(0)
        count = torch.where(valid, nx * ny, torch.zeros_like(nx))
        face_ids = torch.nonzero(count > 0).squeeze(1)
        # Chunk the faces so the candidate list stays bounded for huge triangles.
        cum = torch.cumsum(count[face_ids], 0)
        start = 0
        while start < face_ids.numel():
            base = cum[start - 1] if start > 0 else torch.zeros((), dtype=torch.int64, device=dev)
            stop = int(torch.searchsorted(cum, base + max_candidates, right=True))
            stop = max(stop, start + 1)
            _rasterize_chunk(tri, area, face_ids[start:stop], j0, nx, i0, count, width, perspective,
                             pix_to_face[b], bary_out[b], depth_out[b])
            start = stop
    return pix_to_face.view(B, height, width), bary_out.view(B, height, width, 3), depth_out.view(B, height, width)


def _rasterize_chunk(tri, area, fids, j0, nx, i0, count, width, perspective, p2f, bary_out, depth_out):
    """Test every pixel of the bounding boxes of faces ``fids`` and merge winners into the outputs."""
    dev = tri.device
    cnt = count[fids]
    cand_face = torch.repeat_interleave(fids, cnt)
    offsets = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(cand_face.numel(), device=dev) - torch.repeat_interleave(offsets, cnt)
    w_box = nx[cand_face]
    col = j0[cand_face] + local % w_box
    row = i0[cand_face] + local // w_box
    px = col.to(torch.float64) + 0.5
    py = row.to(torch.float64) + 0.5
    v = tri[cand_face]
    x0, y0, z0 = v[:, 0, 0], v[:, 0, 1], v[:, 0, 2]
    x1, y1, z1 = v[:, 1, 0], v[:, 1, 1], v[:, 1, 2]
    x2, y2, z2 = v[:, 2, 0], v[:, 2, 1], v[:, 2, 2]
    ia = 1.0 / area[cand_face]
    b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * ia
    b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * ia
    b2 = ((x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)) * ia
    inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    cand_face, row, col = cand_face[inside], row[inside], col[inside]
    b0, b1, b2 = b0[inside], b1[inside], b2[inside]
    z0, z1, z2 = z0[inside], z1[inside], z2[inside]
    if perspective:
        q0, q1, q2 = b0 * (1.0 / z0), b1 * (1.0 / z1), b2 * (1.0 / z2)
        depth = 1.0 / (q0 + q1 + q2)
        bary = torch.stack([q0 * depth, q1 * depth, q2 * depth], dim=1)
    else:
        depth = b0 * z0 + b1 * z1 + b2 * z2
        bary = torch.stack([b0, b1, b2], dim=1)
    pix = row * width + col
    # Merge with what earlier chunks left: smallest depth, then smallest face id.
    zmin = depth_out.clone().scatter_reduce(0, pix, depth, reduce="amin", include_self=True)
    at_min = depth == zmin[pix]
    big = torch.iinfo(torch.int64).max
    prev_face = torch.where(depth_out == zmin, torch.where(p2f >= 0, p2f, big), big)
    fmin = prev_face.scatter_reduce(0, pix[at_min], cand_face[at_min], reduce="amin", include_self=True)
    win = at_min & (cand_face == fmin[pix])
    wp = pix[win]
    p2f[wp] = cand_face[win]
    bary_out[wp] = bary[win]
    depth_out[wp] = depth[win]
