"""Linear blend skinning for FLAME-layout models, as pure batched torch functions.

Every function takes all it needs as arguments and returns tensors; none holds state. They work
in float32 and float64 on any device and are differentiable everywhere, including at zero
rotation (``axis_angle_to_matrix`` switches to a Taylor series near 0 instead of dividing by the
angle).

Conventions (FLAME's): metres, axis-angle rotations in radians, ``J`` joints ordered so that each
joint's parent comes before it (``parents[0] == -1``). Pose-corrective features are
``(R_k - I)`` flattened row-major for joints ``k = 1..J-1`` in joint order, so feature
``(k-1)*9 + m`` belongs to joint ``k``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from rig.errors import ShapeError

# Below this squared angle the Rodrigues coefficients come from their Taylor series: the closed
# forms divide by the angle, whose gradient at 0 is undefined. (1e-3 rad)^2: the series' first
# dropped term is ~theta^6/5040 ~ 2e-22, far below float64 resolution.
_SMALL_ANGLE_SQ = 1e-6


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices: ``skew(v) @ u == cross(v, u)``. (..., 3) -> (..., 3, 3)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors (radians) to rotation matrices.

    Args:
        axis_angle: (..., 3) float tensor; direction = axis, norm = angle in radians.
    Returns:
        (..., 3, 3) rotation matrices of the same dtype/device. ``R @ p`` rotates ``p``
        counter-clockwise about the axis (right-hand rule).

    R = I + a K + b K^2 with K = skew(axis_angle), a = sin(t)/t, b = (1 - cos t)/t^2, t = |axis_angle|.
    ``b`` is evaluated as 2 sin^2(t/2) / t^2 to avoid the cancellation in 1 - cos t (float32).
    """
    if axis_angle.shape[-1:] != (3,):
        raise ShapeError(f"axis_angle_to_matrix: expected (..., 3), got {tuple(axis_angle.shape)}")
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    # Feed the closed form a harmless value where the series is used, so that its (unused)
    # branch produces no inf/NaN gradients through torch.where.
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    a_closed = torch.sin(theta) / theta
    half_sin = torch.sin(0.5 * theta)
    b_closed = 2.0 * half_sin * half_sin / safe_sq
    a_series = 1.0 - theta_sq / 6.0 + theta_sq * theta_sq / 120.0
    b_series = 0.5 - theta_sq / 24.0 + theta_sq * theta_sq / 720.0
    a = torch.where(small, a_series, a_closed)[..., None, None]
    b = torch.where(small, b_series, b_closed)[..., None, None]
    K = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(K.shape)
    return eye + a * K + b * (K @ K)


def blend_shapes(coeffs: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Linear blendshape offsets.

    Args:
        coeffs: (B, K) coefficients. May have fewer columns than ``dirs``; the first K are used.
        dirs: (V, 3, K') blendshape directions with K' >= K (metres per unit coefficient).
    Returns:
        (B, V, 3) offsets ``sum_k coeffs[b, k] * dirs[:, :, k]``.
    """
    if coeffs.ndim != 2 or dirs.ndim != 3 or dirs.shape[1] != 3:
        raise ShapeError(f"blend_shapes: expected coeffs (B,K), dirs (V,3,K); got {tuple(coeffs.shape)}, {tuple(dirs.shape)}")
    k = coeffs.shape[1]
    if k > dirs.shape[2]:
        raise ShapeError(f"blend_shapes: {k} coefficients for {dirs.shape[2]} blendshapes")
    B, V = coeffs.shape[0], dirs.shape[0]
    if k == 0:
        return coeffs.new_zeros((B, V, 3))
    # One GEMM against the (V*3, K) view of the directions (no copy of the big tensor).
    return torch.nn.functional.linear(coeffs, dirs.reshape(V * 3, -1)[:, :k]).reshape(B, V, 3)


def regress_joints(J_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joint locations as fixed linear combinations of vertices. (J, V), (B, V, 3) -> (B, J, 3)."""
    if J_regressor.ndim != 2 or vertices.ndim != 3 or J_regressor.shape[1] != vertices.shape[1]:
        raise ShapeError(f"regress_joints: regressor {tuple(J_regressor.shape)} vs vertices {tuple(vertices.shape)}")
    return torch.matmul(J_regressor, vertices)


def pose_features(rot_mats: torch.Tensor) -> torch.Tensor:
    """Pose-corrective features: (R_k - I) row-major for joints 1..J-1. (B, J, 3, 3) -> (B, 9(J-1))."""
    if rot_mats.ndim != 4 or rot_mats.shape[-2:] != (3, 3):
        raise ShapeError(f"pose_features: expected (B, J, 3, 3), got {tuple(rot_mats.shape)}")
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def _homogeneous(rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3), (B, 3) -> (B, 4, 4) rigid transforms."""
    top = torch.cat([rot, trans[..., None]], dim=-1)
    bottom = torch.zeros_like(top[:, :1, :])
    bottom = torch.cat([bottom[..., :3], torch.ones_like(bottom[..., 3:])], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def check_parents(parents: Sequence[int]) -> list[int]:
    """Return ``parents`` as a list after checking it is a tree rooted at 0 in topological order."""
    parents = [int(p) for p in parents]
    if not parents or parents[0] != -1 or any(not (0 <= p < k) for k, p in enumerate(parents) if k > 0):
        raise ShapeError(f"kinematic tree must have parents[0] == -1 and parents[k] < k, got {parents}")
    return parents


def rigid_transforms(rot_mats: torch.Tensor, joints: torch.Tensor, parents: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics along the kinematic tree.

    Args:
        rot_mats: (B, J, 3, 3) local joint rotations.
        joints: (B, J, 3) rest-pose joint locations.
        parents: J parent indices, ``parents[0] == -1`` and ``parents[k] < k``.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        rel_transforms: (B, J, 4, 4) transforms that map a rest-pose point rigidly attached to
            joint k to its posed location (the world transform with the rest joint removed).
    """
    parents = check_parents(parents)
    B, J = rot_mats.shape[:2]
    if joints.shape != (B, J, 3) or len(parents) != J:
        raise ShapeError(f"rigid_transforms: rot_mats {tuple(rot_mats.shape)}, joints {tuple(joints.shape)}, {len(parents)} parents")
    world: list[torch.Tensor] = []
    for k in range(J):
        p = parents[k]
        offset = joints[:, k] if p < 0 else joints[:, k] - joints[:, p]
        local = _homogeneous(rot_mats[:, k], offset)
        world.append(local if p < 0 else world[p] @ local)
    G = torch.stack(world, dim=1)  # (B, J, 4, 4)
    posed_joints = G[:, :, :3, 3]
    # Remove the rest-pose joint location: A = G @ [I | -j].
    shift = (G[:, :, :3, :3] @ joints[..., None])[..., 0]
    rel = torch.cat([G[:, :, :3, :3], (posed_joints - shift)[..., None]], dim=-1)
    rel = torch.cat([rel, G[:, :, 3:, :]], dim=-2)
    return posed_joints, rel


def skin_vertices(vertices: torch.Tensor, lbs_weights: torch.Tensor, rel_transforms: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning.

    Args:
        vertices: (B, V, 3) rest-pose vertices (with pose correctives already added).
        lbs_weights: (V, J) skinning weights, rows summing to 1.
        rel_transforms: (B, J, 4, 4) from ``rigid_transforms``.
    Returns:
        (B, V, 3) posed vertices: ``sum_j w[v, j] * (A_j @ [v, 1])``.
    """
    B, J = rel_transforms.shape[:2]
    if lbs_weights.shape != (vertices.shape[1], J):
        raise ShapeError(f"skin_vertices: weights {tuple(lbs_weights.shape)} for {vertices.shape[1]} vertices, {J} joints")
    V = vertices.shape[1]
    # Blend the 3x4 transforms with one (V, J) x (J, B*12) GEMM, then apply them elementwise:
    # per-vertex 3x3 matmuls through bmm are far slower on CPU.
    A = rel_transforms[:, :, :3, :].reshape(B, J, 12).transpose(0, 1).reshape(J, B * 12)
    T = (lbs_weights @ A).reshape(V, B, 3, 4).transpose(0, 1)
    return (T[..., :3] * vertices[:, :, None, :]).sum(-1) + T[..., 3]


class LbsOutput(NamedTuple):
    """Result of ``lbs``: ``vertices`` (B, V, 3) and ``joints`` (B, J, 3), posed, metres."""

    vertices: torch.Tensor
    joints: torch.Tensor


def lbs(
    coeffs: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    blenddirs: torch.Tensor,
    posedirs: torch.Tensor,
    J_regressor: torch.Tensor,
    parents: Sequence[int],
    lbs_weights: torch.Tensor,
) -> LbsOutput:
    """The full FLAME forward pass without translation.

    Args:
        coeffs: (B, K) blendshape coefficients (FLAME: shape then expression, concatenated).
        pose: (B, J, 3) axis-angle per joint, radians.
        v_template: (V, 3) rest mesh.
        blenddirs: (V, 3, K') blendshapes, K' >= K (the first K are used).
        posedirs: (V, 3, 9(J-1)) pose correctives.
        J_regressor: (J, V).
        parents: J parent indices.
        lbs_weights: (V, J).
    Returns:
        ``LbsOutput(vertices (B, V, 3), joints (B, J, 3))``.
    """
    B = coeffs.shape[0]
    if pose.ndim != 3 or pose.shape[0] != B or pose.shape[2] != 3:
        raise ShapeError(f"lbs: pose must be (B={B}, J, 3), got {tuple(pose.shape)}")
    v_shaped = v_template[None] + blend_shapes(coeffs, blenddirs)
    joints = regress_joints(J_regressor, v_shaped)
    rot_mats = axis_angle_to_matrix(pose)
    v_posed = v_shaped + blend_shapes(pose_features(rot_mats), posedirs)
    posed_joints, rel = rigid_transforms(rot_mats, joints, parents)
    return LbsOutput(skin_vertices(v_posed, lbs_weights, rel), posed_joints)
