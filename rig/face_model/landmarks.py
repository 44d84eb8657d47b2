"""iBUG-68 landmarks from a posed mesh: barycentric points on triangles, FLAME's yaw-dependent contour.

A landmark embedding is (triangle index, barycentric coordinates) per point. Models either carry
68 static points, or FLAME's 51 static points (iBUG 17..67) plus a table of 17 jaw-contour points
(iBUG 0..16) for each of 79 head-yaw bins: when the head turns, the visible silhouette of the
cheek moves across the surface, so the contour points are re-chosen from the yaw.

Yaw binning, as FLAME trackers do it: R = R_global @ R_neck; yaw = atan2(-R[2,0], sqrt(R[0,0]^2 +
R[1,0]^2)) in degrees; a = round(min(-yaw, 39)); bin = a for a >= 0, else 39 - a (so 40..78),
with everything below -39 sent to bin 78. Bin 0 is frontal; bins 1..39 are yaw -1..-39 degrees,
bins 40..78 yaw +1..+39 (and beyond).
"""

from __future__ import annotations

import torch

from rig.errors import ShapeError
from rig.face_model.lbs import axis_angle_to_matrix

N_CONTOUR_BINS_PER_SIDE = 39


def barycentric_points(vertices: torch.Tensor, faces: torch.Tensor, face_idx: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Points on the mesh surface.

    Args:
        vertices: (B, V, 3).
        faces: (F, 3) int64 triangles.
        face_idx: (L,) or (B, L) int64 triangle of each point.
        bary: (L, 3) or (B, L, 3) barycentric coordinates.
    Returns:
        (B, L, 3): ``sum_i bary[..., i] * vertices[faces[face_idx, i]]``.
    """
    B = vertices.shape[0]
    if face_idx.ndim == 1:
        face_idx = face_idx.expand(B, -1)
        bary = bary.expand(B, -1, -1)
    if face_idx.shape[0] != B or bary.shape != face_idx.shape + (3,):
        raise ShapeError(f"barycentric_points: face_idx {tuple(face_idx.shape)}, bary {tuple(bary.shape)} for batch {B}")
    tri = faces[face_idx]  # (B, L, 3) vertex ids
    corners = torch.gather(vertices, 1, tri.reshape(B, -1, 1).expand(-1, -1, 3)).reshape(B, -1, 3, 3)
    return (bary[..., None] * corners).sum(-2)


def head_yaw(global_pose: torch.Tensor, neck_pose: torch.Tensor) -> torch.Tensor:
    """Yaw (radians) of R_global @ R_neck, as FLAME trackers measure it. (B, 3), (B, 3) -> (B,)."""
    R = axis_angle_to_matrix(global_pose) @ axis_angle_to_matrix(neck_pose)
    return torch.atan2(-R[:, 2, 0], torch.sqrt(R[:, 0, 0] ** 2 + R[:, 1, 0] ** 2))


def contour_bin(yaw: torch.Tensor) -> torch.Tensor:
    """Dynamic-contour bin (0..78) for each head yaw in radians. (B,) -> (B,) int64."""
    n = N_CONTOUR_BINS_PER_SIDE
    a = torch.round(torch.clamp(-torch.rad2deg(yaw.detach()), max=n)).to(torch.int64)
    return torch.where(a >= 0, a, torch.where(a < -n, torch.full_like(a, 2 * n), n - a))


def ibug68_landmarks(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    static_faces: torch.Tensor,
    static_bary: torch.Tensor,
    dynamic_faces: torch.Tensor | None = None,
    dynamic_bary: torch.Tensor | None = None,
    global_pose: torch.Tensor | None = None,
    neck_pose: torch.Tensor | None = None,
) -> torch.Tensor:
    """The 68 iBUG landmarks of a batch of posed meshes.

    Args:
        vertices: (B, V, 3) posed vertices (translation included if wanted in the output).
        faces: (F, 3).
        static_faces, static_bary: (68,), (68, 3) - or (51,), (51, 3) for FLAME's split.
        dynamic_faces, dynamic_bary: (79, 17), (79, 17, 3) FLAME contour table (51-point case).
        global_pose, neck_pose: (B, 3) axis-angle; pick the contour bin (51-point case).
    Returns:
        (B, 68, 3) in iBUG order (contour 0..16, then brows, nose, eyes, mouth). A model without
        any embedding returns (B, 0, 3).
    """
    static = barycentric_points(vertices, faces, static_faces, static_bary)
    if static_faces.shape[0] != 51:
        return static
    if dynamic_faces is None or dynamic_bary is None or global_pose is None or neck_pose is None:
        raise ShapeError("ibug68_landmarks: 51 static landmarks need the dynamic contour table and the head pose")
    bins = contour_bin(head_yaw(global_pose, neck_pose)).clamp(max=dynamic_faces.shape[0] - 1)
    contour = barycentric_points(vertices, faces, dynamic_faces[bins], dynamic_bary[bins])
    return torch.cat([contour, static], dim=1)
