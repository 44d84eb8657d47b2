"""Controls -> face-model landmarks: the differentiable geometry behind RigNet's landmark loss.

``ControlLandmarks`` poses the face model's landmark-only copy (``rig.track.landmark_model``) with a
control vector's expression and jaw, rotates the result by its yaw / pitch / roll (R = R_y R_x R_z,
``rig.face_model.params.euler_to_axis_angle``'s convention) about the landmarks' centre and keeps
the image-plane coordinates. A difference in controls then costs what it moves on the face, in
metres, instead of an equal weight per coefficient.
"""

from __future__ import annotations

import torch
from torch import nn

from rig.errors import ShapeError


def euler_matrix(ypr: torch.Tensor) -> torch.Tensor:
    """(B, 3) yaw, pitch, roll radians -> (B, 3, 3) R_y(yaw) @ R_x(pitch) @ R_z(roll)."""
    y, p, r = ypr.unbind(-1)
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    Ry = torch.stack([torch.cos(y), zero, torch.sin(y), zero, one, zero, -torch.sin(y), zero, torch.cos(y)], -1)
    Rx = torch.stack([one, zero, zero, zero, torch.cos(p), -torch.sin(p), zero, torch.sin(p), torch.cos(p)], -1)
    Rz = torch.stack([torch.cos(r), -torch.sin(r), zero, torch.sin(r), torch.cos(r), zero, zero, zero, one], -1)
    shape = ypr.shape[:-1] + (3, 3)
    return Ry.reshape(shape) @ Rx.reshape(shape) @ Rz.reshape(shape)


class ControlLandmarks(nn.Module):
    """Encoder-layout controls (B, E + 6) physical units -> (B, 68, 2) landmark x, y in metres."""

    def __init__(self, face_model):
        super().__init__()
        from rig.face_model.model import FaceModel
        from rig.track.landmark_model import landmark_submodel

        if not face_model.has_landmarks:
            raise ShapeError(f"{face_model.data.name}: the landmark loss needs a landmark embedding")
        self.model = FaceModel(landmark_submodel(face_model.data), dtype=torch.float32)
        self.n_expression = face_model.n_expression

    def forward(self, controls: torch.Tensor) -> torch.Tensor:
        from rig.face_model.params import RigParams

        E = self.n_expression
        if controls.ndim != 2 or controls.shape[1] != E + 6:
            raise ShapeError(f"ControlLandmarks: expected (B, {E + 6}) controls, got {tuple(controls.shape)}")
        B = controls.shape[0]
        params = RigParams.zeros(B, 0, E, dtype=controls.dtype, device=controls.device)
        params.expression = controls[:, :E]
        params.jaw_pose = controls[:, E:E + 3]
        lmk = self.model(params).landmarks                     # (B, 68, 3), unrotated head
        lmk = lmk - lmk.mean(1, keepdim=True)
        rotated = lmk @ euler_matrix(controls[:, E + 3:E + 6]).transpose(1, 2)
        return rotated[..., :2]
