"""Block-pentadiagonal solver: the fast path agrees with the dense reference."""

from __future__ import annotations

import pytest
import torch

from rig.errors import ShapeError
from rig.track.banded import assemble_dense, solve_block_pentadiagonal, solve_dense_reference


def _random_band(n: int, P: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    # A = M^T M for a block-banded M (blocks at offsets 0..2): symmetric positive definite with
    # exactly the band structure of second-difference normal equations.
    M = torch.zeros(n * P + 3, n * P, dtype=torch.float64)
    for i in range(n):
        for k in range(3):
            if i + k < n:
                M[i * P:(i + 1) * P, (i + k) * P:(i + k + 1) * P] = torch.randn(P, P, generator=g, dtype=torch.float64)
    A = M.T @ M + 1e-3 * torch.eye(n * P, dtype=torch.float64)
    diag = torch.stack([A[i * P:(i + 1) * P, i * P:(i + 1) * P] for i in range(n)])
    off1 = torch.stack([A[i * P:(i + 1) * P, (i + 1) * P:(i + 2) * P] for i in range(n - 1)])
    off2 = torch.stack([A[i * P:(i + 1) * P, (i + 2) * P:(i + 3) * P] for i in range(n - 2)])
    rhs = torch.randn(n, P, generator=g, dtype=torch.float64)
    return A, diag, off1, off2, rhs


@pytest.mark.parametrize("n,P,seed", [(3, 1, 0), (7, 4, 1), (20, 9, 2)])
def test_band_solve_matches_dense(n, P, seed):
    A, diag, off1, off2, rhs = _random_band(n, P, seed)
    torch.testing.assert_close(assemble_dense(diag, off1, off2), A)
    x = solve_block_pentadiagonal(diag, off1, off2, rhs)
    ref = solve_dense_reference(diag, off1, off2, rhs)
    torch.testing.assert_close(x, ref, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(A @ x.reshape(-1), rhs.reshape(-1), rtol=1e-6, atol=1e-8)


def test_band_solve_rejects_inconsistent_shapes():
    _, diag, off1, off2, rhs = _random_band(5, 2, 3)
    with pytest.raises(ShapeError):
        solve_block_pentadiagonal(diag, off1[:-1], off2, rhs)
