"""Silhouette antialiasing that gives gradients w.r.t. vertex positions at object edges.

Per-pixel triangle ids are piecewise constant in the vertex positions, so a rendered image has no
gradient telling an edge to move. As in nvdiffrast's antialiasing, each pair of neighbouring pixels
where one is covered and the other is background is blended by where the covering triangle's edge
crosses the segment between the two pixel centres (``s`` in [0, 1] from the covered centre):

    s > 1/2: the surface reaches into the background pixel:  out += (s - 1/2) * (in - out)
    s < 1/2: the covered pixel is only partly covered:        in  += (1/2 - s) * (out - in)

``s`` is computed with torch ops from the screen-space vertices, so the blend weights carry the
edge-position gradient. Horizontal pairs handle edges steeper than 45 degrees and vertical pairs the
flatter ones, so each edge is counted once and the total coverage of a shape matches its area.
Occlusion edges are treated the same way: for two covered neighbours with different triangles,
the nearer pixel plays "in" and the farther one "out". Where the segment leaves the "in"
triangle, only its *silhouette-capable* edges count: edges on the mesh boundary or whose
neighbouring triangle faces the other way on screen; an interior edge between two visible
triangles (e.g. a quad's diagonal) is never taken for an edge to blend, and a continuing surface
(the segment walks into the "out" pixel's own triangle) is left alone.
"""

from __future__ import annotations

import torch

from rig.errors import ShapeError
from rig.render.rasterize import Fragments


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) int64: the face across edge k (opposite vertex k) of each face, -1 on the boundary.

    On non-manifold edges one of the other faces is picked.
    """
    F = faces.shape[0]
    a = faces[:, [1, 2, 0]]
    b = faces[:, [2, 0, 1]]
    lo, hi = torch.minimum(a, b).reshape(-1), torch.maximum(a, b).reshape(-1)
    key = lo * (int(faces.max()) + 1 if F else 1) + hi
    order = torch.argsort(key, stable=True)
    sk = key[order]
    nb = torch.full((F * 3,), -1, dtype=torch.int64, device=faces.device)
    same = sk[1:] == sk[:-1]
    first, second = order[:-1][same], order[1:][same]
    nb[first] = second // 3
    nb[second] = first // 3
    return nb.view(F, 3)


def _silhouette_edges(screen: torch.Tensor, faces: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
    """(B, F, 3) bool: edge k of face f can be a silhouette in image b (boundary or fold)."""
    xy = screen.detach()[..., :2]
    v0, v1, v2 = xy[:, faces[:, 0]], xy[:, faces[:, 1]], xy[:, faces[:, 2]]
    e1, e2 = v1 - v0, v2 - v0
    sign = torch.sign(e1[..., 0] * e2[..., 1] - e2[..., 0] * e1[..., 1])  # (B, F)
    other = sign[:, nb.clamp_min(0)]  # (B, F, 3)
    return (nb < 0) | (other != sign[..., None])


def _crossing_in_face(screen, faces, fid, bidx, p_in, p_out, silhouette):
    """Where p_in -> p_out leaves triangle ``fid``'s interior (screen-space barycentrics are affine).

    Returns s (N,) in [0, 1] (smallest crossing among silhouette edges the segment exits through),
    k (N,) the edge index (edge k is opposite vertex k), ok (N,) bool whether a silhouette edge was
    crossed, k_any (N,) the first edge crossed of any kind, and the edge directions (N, 2).
    """
    v = screen[bidx[:, None], faces[fid]][..., :2]  # (N, 3, 2)

    def bary2d(p):
        x0, y0 = v[:, 0, 0], v[:, 0, 1]
        x1, y1 = v[:, 1, 0], v[:, 1, 1]
        x2, y2 = v[:, 2, 0], v[:, 2, 1]
        px, py = p[:, 0], p[:, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        w0 = (x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)
        w1 = (x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)
        w2 = (x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)
        return torch.stack([w0, w1, w2], dim=1) / area[:, None]

    b_in, b_out = bary2d(p_in), bary2d(p_out)
    exits = b_out < 0
    denom = torch.where(exits, b_in - b_out, torch.ones_like(b_in))
    s_k = torch.where(exits, b_in / denom, torch.full_like(b_in, 2.0))
    k_any = s_k.detach().argmin(dim=1)
    sil = exits & silhouette
    s, k = torch.where(sil, s_k, torch.full_like(s_k, 2.0)).min(dim=1)
    ok = sil.any(dim=1)
    rows = torch.arange(v.shape[0], device=v.device)
    edge = (v[rows, (k + 2) % 3] - v[rows, (k + 1) % 3]).detach()
    return s.clamp(0.0, 1.0), ok, k_any, edge


def _edge_crossing(screen, faces, fid, bidx, p_in, p_out, silhouette, neighbours, out_face):
    """Crossing parameter s (N,), validity (N,) and crossed edge direction (N, 2) of the object
    boundary along p_in -> p_out, starting in triangle ``fid``; when the segment first leaves
    ``fid`` through an interior edge, the search continues in the triangle across it (one step),
    unless that triangle is ``out_face`` (the surface simply continues: no edge to blend)."""
    s, ok, k_any, edge = _crossing_in_face(screen, faces, fid, bidx, p_in, p_out, silhouette[bidx, fid])
    nxt = neighbours[fid, k_any]
    retry = ~ok & (nxt >= 0) & (nxt != out_face)
    if bool(retry.any()):
        idx = torch.nonzero(retry).squeeze(1)
        s2, ok2, _, edge2 = _crossing_in_face(screen, faces, nxt[idx], bidx[idx], p_in[idx], p_out[idx],
                                              silhouette[bidx[idx], nxt[idx]])
        s = s.index_put((idx,), s2)
        ok = ok.index_put((idx,), ok2)
        edge = edge.index_put((idx,), edge2)
    return s, ok, edge


def antialias(color: torch.Tensor, fragments: Fragments, screen: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Blend ``color`` across silhouette and occlusion edges (see the module docstring).

    color: (B, H, W, C) rendered image (background already filled in).
    fragments: from ``rasterize`` of the same ``screen`` / ``faces``.
    screen: (B, V, 3) (u, v, depth) vertices; gradients reach them through the edge crossings.
    Returns (B, H, W, C).
    """
    if color.ndim != 4 or color.shape[:3] != fragments.pix_to_face.shape:
        raise ShapeError(f"antialias: color must be (B, H, W, C) matching fragments {tuple(fragments.pix_to_face.shape)}, "
                         f"got {tuple(color.shape)}")
    if screen.ndim == 2:
        screen = screen.unsqueeze(0)
    B, H, W, C = color.shape
    faces = faces.to(device=color.device, dtype=torch.int64)
    p2f = fragments.pix_to_face
    mask = p2f >= 0
    depth = fragments.depth.detach()
    neighbours = edge_neighbours(faces)
    screen = screen.expand(B, -1, -1)
    silhouette = _silhouette_edges(screen, faces, neighbours)
    flat_color = color.reshape(B * H * W, C)
    targets, changes = [], []  # one index_add at the end instead of a full-image copy per pair set
    for axis in (2, 1):  # 2: horizontal neighbours (j, j+1); 1: vertical (i, i+1)
        if (W if axis == 2 else H) < 2:
            continue
        if axis == 2:
            m_a, m_b = mask[:, :, :-1], mask[:, :, 1:]
        else:
            m_a, m_b = mask[:, :-1, :], mask[:, 1:, :]
        if axis == 2:
            f_a, f_b = p2f[:, :, :-1], p2f[:, :, 1:]
        else:
            f_a, f_b = p2f[:, :-1, :], p2f[:, 1:, :]
        # Silhouettes against the background, and occlusion edges (both covered, different faces).
        b, i, j = torch.nonzero((m_a != m_b) | (m_a & m_b & (f_a != f_b)), as_tuple=True)
        i2, j2 = (i, j + 1) if axis == 2 else (i + 1, j)
        # Most different-face pairs are two triangles of one continuous surface (sharing a vertex):
        # drop them before the crossing computations.
        fa, fb = p2f[b, i, j], p2f[b, i2, j2]
        shared = (faces[fa.clamp_min(0)][:, :, None] == faces[fb.clamp_min(0)][:, None, :]).flatten(1).any(dim=1)
        adjacent = (fa >= 0) & (fb >= 0) & shared
        if bool(adjacent.any()):
            keep_pairs = ~adjacent
            b, i, j, i2, j2 = b[keep_pairs], i[keep_pairs], j[keep_pairs], i2[keep_pairs], j2[keep_pairs]
        if b.numel() == 0:
            continue
        # "in" is the covered pixel, or the nearer one when both are covered.
        a_in = mask[b, i, j] & (~mask[b, i2, j2] | (depth[b, i, j] <= depth[b, i2, j2]))
        ii = torch.where(a_in, i, i2)
        ji = torch.where(a_in, j, j2)
        io = torch.where(a_in, i2, i)
        jo = torch.where(a_in, j2, j)
        fid = p2f[b, ii, ji]
        p_in = torch.stack([ji, ii], dim=1).to(screen.dtype) + 0.5
        p_out = torch.stack([jo, io], dim=1).to(screen.dtype) + 0.5
        s, ok, edge = _edge_crossing(screen, faces, fid, b, p_in, p_out, silhouette, neighbours, p2f[b, io, jo])
        steep = edge[:, 1].abs() >= edge[:, 0].abs()
        keep = ok & (steep if axis == 2 else ~steep)
        if not bool(keep.any()):
            continue
        b, s = b[keep], s[keep]
        lin_in = (b * H + ii[keep]) * W + ji[keep]
        lin_out = (b * H + io[keep]) * W + jo[keep]
        c_in, c_out = flat_color[lin_in], flat_color[lin_out]
        s = s.to(color.dtype)[:, None]
        grow = (s - 0.5).clamp_min(0.0)
        shrink = (0.5 - s).clamp_min(0.0)
        targets += [lin_out, lin_in]
        changes += [grow * (c_in - c_out), shrink * (c_out - c_in)]
    if not targets:
        return color
    return flat_color.index_add(0, torch.cat(targets), torch.cat(changes)).view(B, H, W, C)
