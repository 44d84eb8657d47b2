"""Solve symmetric positive-definite block-pentadiagonal systems (the normal equations of a window).

In a window of n frames with P unknowns each, a penalty on second differences couples every
frame with its two neighbours on each side, so the Gauss-Newton matrix has non-zero blocks only
at block offsets 0, 1 and 2. A block Cholesky factorisation along that band costs O(n P^3)
instead of the dense O((n P)^3). ``solve_dense_reference`` builds the full matrix and is the
specification the fast path is tested against.
"""

from __future__ import annotations

import torch

from rig.errors import ShapeError


def _check(diag: torch.Tensor, off1: torch.Tensor, off2: torch.Tensor, rhs: torch.Tensor) -> tuple[int, int]:
    if diag.ndim != 3 or diag.shape[1] != diag.shape[2]:
        raise ShapeError(f"block band: diagonal blocks must be (n, P, P), got {tuple(diag.shape)}")
    n, P = diag.shape[0], diag.shape[1]
    if off1.shape != (max(n - 1, 0), P, P) or off2.shape != (max(n - 2, 0), P, P) or rhs.shape != (n, P):
        raise ShapeError(f"block band: for n={n}, P={P} expected off1 ({n - 1}, P, P), off2 ({n - 2}, P, P), "
                         f"rhs ({n}, P); got {tuple(off1.shape)}, {tuple(off2.shape)}, {tuple(rhs.shape)}")
    return n, P


def solve_block_pentadiagonal(diag: torch.Tensor, off1: torch.Tensor, off2: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``A x = rhs`` for a symmetric positive-definite block-banded ``A``.

    Args:
        diag: (n, P, P) blocks ``A[i, i]``.
        off1: (n-1, P, P) blocks ``A[i, i+1]`` (``A[i+1, i]`` is the transpose).
        off2: (n-2, P, P) blocks ``A[i, i+2]``.
        rhs: (n, P).
    Returns:
        (n, P) solution. Raises ``torch.linalg.LinAlgError`` if ``A`` is not positive definite.
    """
    n, P = _check(diag, off1, off2, rhs)
    L = [None] * n   # L[i, i]
    B = [None] * n   # L[i+1, i]
    C = [None] * n   # L[i+2, i]
    for i in range(n):
        S = diag[i]
        if i >= 1:
            S = S - B[i - 1] @ B[i - 1].T
        if i >= 2:
            S = S - C[i - 2] @ C[i - 2].T
        L[i] = torch.linalg.cholesky(S)
        if i + 1 < n:
            M = off1[i].T  # A[i+1, i]
            if i >= 1:
                M = M - C[i - 1] @ B[i - 1].T
            # B_i = M L_i^-T  <=>  L_i B_i^T = M^T
            B[i] = torch.linalg.solve_triangular(L[i], M.T, upper=False).T
        if i + 2 < n:
            C[i] = torch.linalg.solve_triangular(L[i], off2[i], upper=False).T  # A[i+2, i]^T = off2[i]
    y = [None] * n
    for i in range(n):
        b = rhs[i]
        if i >= 1:
            b = b - B[i - 1] @ y[i - 1]
        if i >= 2:
            b = b - C[i - 2] @ y[i - 2]
        y[i] = torch.linalg.solve_triangular(L[i], b[:, None], upper=False)[:, 0]
    x = [None] * n
    for i in reversed(range(n)):
        b = y[i]
        if i + 1 < n:
            b = b - B[i].T @ x[i + 1]
        if i + 2 < n:
            b = b - C[i].T @ x[i + 2]
        x[i] = torch.linalg.solve_triangular(L[i].T, b[:, None], upper=True)[:, 0]
    return torch.stack(x)


def assemble_dense(diag: torch.Tensor, off1: torch.Tensor, off2: torch.Tensor) -> torch.Tensor:
    """The full (nP, nP) matrix of a block band (for tests and tiny problems)."""
    n, P = diag.shape[0], diag.shape[1]
    A = diag.new_zeros((n * P, n * P))
    for i in range(n):
        A[i * P:(i + 1) * P, i * P:(i + 1) * P] = diag[i]
    for k, blocks in ((1, off1), (2, off2)):
        for i in range(n - k):
            A[i * P:(i + 1) * P, (i + k) * P:(i + k + 1) * P] = blocks[i]
            A[(i + k) * P:(i + k + 1) * P, i * P:(i + 1) * P] = blocks[i].T
    return A


def solve_dense_reference(diag: torch.Tensor, off1: torch.Tensor, off2: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Reference for ``solve_block_pentadiagonal``: assemble the dense matrix and solve it."""
    n, P = _check(diag, off1, off2, rhs)
    return torch.linalg.solve(assemble_dense(diag, off1, off2), rhs.reshape(-1)).reshape(n, P)
