"""Landmarks: barycentric interpolation by hand, the 51 + 17 split, FLAME's yaw-bin rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rig.face_model.landmarks import contour_bin, head_yaw

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_landmarks_are_barycentric_points_of_the_posed_mesh(flame_model64, reference_params):
    p = reference_params(3, flame_model64)
    out = flame_model64(p)
    V = out.vertices[0].numpy()
    F = flame_model64.data.faces
    d = flame_model64.data
    b = contour_bin(head_yaw(p.global_pose, p.neck_pose)).item()
    idx = np.concatenate([d.dynamic_lmk_faces_idx[b], d.lmk_faces_idx])
    bary = np.concatenate([d.dynamic_lmk_bary_coords[b], d.lmk_bary_coords])
    by_hand = np.array([sum(bary[i, c] * V[F[idx[i], c]] for c in range(3)) for i in range(68)])
    assert out.landmarks.shape == (1, 68, 3)
    assert np.abs(out.landmarks[0].numpy() - by_hand).max() < 1e-15


@pytest.mark.parametrize("yaw_deg, expected_bin", [
    (0.0, 0), (-10.0, 10), (-39.0, 39), (-60.0, 39), (10.0, 49), (1.0, 40), (39.0, 78), (38.6, 78), (60.0, 78), (0.4, 0), (-0.6, 1),
])
def test_contour_bin_for_known_yaws(yaw_deg, expected_bin):
    pose = torch.tensor([[0.0, math.radians(yaw_deg), 0.0]], dtype=torch.float64)
    assert contour_bin(head_yaw(pose, torch.zeros_like(pose))).item() == expected_bin


def test_yaw_is_measured_from_global_times_neck():
    g = torch.tensor([[0.0, math.radians(10), 0.0]], dtype=torch.float64)
    n = torch.tensor([[0.0, math.radians(15), 0.0]], dtype=torch.float64)
    assert contour_bin(head_yaw(g, n)).item() == 39 + 25
    # Pitch alone leaves the contour frontal.
    pitch = torch.tensor([[0.4, 0.0, 0.0]], dtype=torch.float64)
    assert contour_bin(head_yaw(pitch, torch.zeros_like(pitch))).item() == 0


def test_forward_uses_the_bin_of_the_head_yaw(flame_model64):
    d = flame_model64.data
    p = flame_model64.zero_params(2)
    p.global_pose[1, 1] = math.radians(-20)
    out = flame_model64(p)
    for row, b in ((0, 0), (1, 20)):
        V = out.vertices[row].numpy()
        tri = d.faces[d.dynamic_lmk_faces_idx[b]]
        want = (d.dynamic_lmk_bary_coords[b][..., None] * V[tri]).sum(1)
        assert np.abs(out.landmarks[row, :17].numpy() - want).max() < 1e-15
    assert not np.allclose(d.dynamic_lmk_faces_idx[0], d.dynamic_lmk_faces_idx[20])
