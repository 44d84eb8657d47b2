"""The pure LBS functions: Rodrigues against scipy and at 0, gradients against finite differences,
analytic cases (zero pose = template + blendshapes, a pure rotation of the root), and skinning
against a per-vertex loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from rig.face_model import RigParams
from rig.face_model.lbs import (axis_angle_to_matrix, blend_shapes, pose_features, regress_joints,
                                rigid_transforms, skin_vertices)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rodrigues_matches_scipy(dtype):
    rng = np.random.default_rng(0)
    rotvecs = np.concatenate([rng.normal(size=(50, 3)), rng.normal(size=(10, 3)) * 1e-4, np.zeros((1, 3))])
    got = axis_angle_to_matrix(torch.tensor(rotvecs, dtype=dtype)).double().numpy()
    want = Rotation.from_rotvec(rotvecs).as_matrix()
    tol = 1e-14 if dtype == torch.float64 else 1e-6
    assert np.abs(got - want).max() < tol


def test_rodrigues_gradient_at_zero_is_the_skew_generator():
    # d(R v)/d(omega) at omega = 0 is -skew(v) exactly (R ~ I + skew(omega)).
    v = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64)
    omega = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda w: axis_angle_to_matrix(w) @ v, omega)
    x, y, z = v.tolist()
    want = -np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    assert np.allclose(jac.numpy(), want, atol=1e-15)
    assert torch.isfinite(jac).all()


def test_rodrigues_gradcheck_around_branch_switch():
    for scale in (1e-5, 1e-3, 1.0):
        w = (torch.tensor([0.6, -0.3, 0.74], dtype=torch.float64) * scale).requires_grad_()
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (w,), eps=1e-6, atol=1e-8)


def test_skinning_matches_per_vertex_loop():
    rng = np.random.default_rng(1)
    B, V, J = 2, 7, 5
    parents = [-1, 0, 1, 1, 1]
    rot = axis_angle_to_matrix(torch.tensor(rng.normal(size=(B, J, 3)) * 0.4))
    joints = torch.tensor(rng.normal(size=(B, J, 3)))
    verts = torch.tensor(rng.normal(size=(B, V, 3)))
    w = rng.random((V, J)); w /= w.sum(1, keepdims=True)
    posed_joints, rel = rigid_transforms(rot, joints, parents)
    got = skin_vertices(verts, torch.tensor(w), rel).numpy()
    # Brute force: world transform of each joint as a product along its chain, applied per vertex.
    R, Jn, X = rot.numpy(), joints.numpy(), verts.numpy()
    for b in range(B):
        world = []
        for k in range(J):
            p = parents[k]
            M = np.eye(4); M[:3, :3] = R[b, k]; M[:3, 3] = Jn[b, k] - (Jn[b, p] if p >= 0 else 0)
            world.append(M if p < 0 else world[p] @ M)
        for k in range(J):
            assert np.allclose(posed_joints[b, k].numpy(), world[k][:3, 3], atol=1e-12)
        for v in range(V):
            acc = np.zeros(3)
            for k in range(J):
                local = X[b, v] - Jn[b, k]
                acc += w[v, k] * (world[k][:3, :3] @ local + world[k][:3, 3])
            assert np.allclose(got[b, v], acc, atol=1e-12)


def test_pose_features_layout_is_row_major_per_joint():
    rot = torch.eye(3, dtype=torch.float64).repeat(1, 5, 1, 1)
    rot[0, 2] = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    f = pose_features(rot)[0].numpy()
    assert f.shape == (36,)
    assert np.array_equal(f[9:18], [0, 2, 3, 4, 4, 6, 7, 8, 8])  # joint 2 (jaw) minus I
    assert not f[:9].any() and not f[18:].any()


def test_zero_params_give_the_template(flame_model64):
    out = flame_model64(flame_model64.zero_params(3))
    # Not bit-equal: zero blendshape terms and identity transforms still pass through matmuls whose
    # summation order (and FMA use) depends on the CPU's vector width; on AVX-512 the template comes
    # back off by ~5e-20. 1e-12 m (a picometre) is far below any real change to the mesh.
    assert torch.allclose(out.vertices, flame_model64.v_template.expand(3, -1, -1), rtol=0, atol=1e-12)
    want_joints = flame_model64.J_regressor @ flame_model64.v_template
    assert np.allclose(out.joints[0].numpy(), want_joints.numpy(), atol=1e-15)


def test_zero_pose_is_template_plus_blendshapes(flame_model64):
    rng = np.random.default_rng(2)
    p = flame_model64.zero_params(1)
    p.shape[:] = torch.tensor(rng.normal(size=(1, flame_model64.n_shape)))
    p.expression[:] = torch.tensor(rng.normal(size=(1, flame_model64.n_expression)))
    d = flame_model64.data
    want = d.v_template + d.shapedirs @ p.shape[0].numpy() + d.exprdirs @ p.expression[0].numpy()
    assert np.abs(flame_model64(p).vertices[0].numpy() - want).max() < 1e-13


def test_root_rotation_and_translation_move_the_mesh_rigidly(flame_model64):
    # Rotating only the root about its own joint: v' = R (v - j0) + j0 + t for every vertex.
    p = flame_model64.zero_params(1)
    p.global_pose[:] = torch.tensor([[0.2, -0.5, 0.1]], dtype=torch.float64)
    p.translation[:] = torch.tensor([[0.01, 0.02, -0.3]], dtype=torch.float64)
    v = flame_model64.data.v_template
    j0 = flame_model64.data.J_regressor[0] @ v
    R = Rotation.from_rotvec([0.2, -0.5, 0.1]).as_matrix()
    want = (v - j0) @ R.T + j0 + [0.01, 0.02, -0.3]
    assert np.abs(flame_model64(p).vertices[0].numpy() - want).max() < 1e-14


def test_forward_gradients_match_finite_differences(flame_model64, reference_params):
    base = reference_params(2, flame_model64)
    names = ["shape", "expression", "global_pose", "neck_pose", "jaw_pose", "eye_pose", "translation"]
    rng = np.random.default_rng(3)
    weights = torch.tensor(rng.normal(size=(1, 162, 3)))
    lmk_weights = torch.tensor(rng.normal(size=(1, 68, 3)))

    def loss(p: RigParams) -> torch.Tensor:
        out = flame_model64(p)
        return (out.vertices * weights).sum() + (out.landmarks * lmk_weights).sum() + out.joints.square().sum()

    leaves = {n: getattr(base, n).clone().requires_grad_() for n in names}
    loss(RigParams(**leaves)).backward()
    h = 1e-6
    for n in names:
        width = leaves[n].shape[1]
        for i in sorted(set([0, width // 2, width - 1])):
            plus, minus = base.clone(), base.clone()
            getattr(plus, n)[0, i] += h
            getattr(minus, n)[0, i] -= h
            fd = (loss(plus) - loss(minus)).item() / (2 * h)
            assert abs(leaves[n].grad[0, i].item() - fd) < 1e-6 * max(1.0, abs(fd)), (n, i)


def test_blend_and_regress_shapes_are_checked():
    from rig.errors import ShapeError

    with pytest.raises(ShapeError):
        blend_shapes(torch.zeros(1, 5), torch.zeros(4, 3, 3))
    with pytest.raises(ShapeError):
        regress_joints(torch.zeros(5, 4), torch.zeros(1, 3, 3))
    with pytest.raises(ShapeError):
        rigid_transforms(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3), [0, -1])
