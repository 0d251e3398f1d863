"""Singular factors of a product B @ A, computed from the factors alone."""

import torch


def singular_factors(
    A: torch.Tensor, B: torch.Tensor, rank: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A' [k, d_in], B' [d_out, k] whose units are B @ A's singular directions, largest first:
    B' = U √σ, A' = √σ Vᵀ, truncated to k = `rank` (default: A's row count). B' A' is the
    best rank-k approximation of B A (exact when k reaches its rank); units beyond the rank
    are zero. A [R, d_in], B [d_out, R]: by QR of both and an SVD of the R × R core, never
    forming a d_out × d_in matrix.
    """
    k = A.shape[0] if rank is None else rank
    Qb, Rb = torch.linalg.qr(B)  # [d_out, p], [p, R]
    Qa, Ra = torch.linalg.qr(A.T)  # [d_in, q], [q, R]
    U, S, Vh = torch.linalg.svd(Rb @ Ra.T)  # [p, n], [n], [n, q]
    n = min(k, len(S))
    root = S[:n].sqrt()
    A2 = torch.zeros(k, A.shape[1], dtype=A.dtype, device=A.device)
    B2 = torch.zeros(B.shape[0], k, dtype=B.dtype, device=B.device)
    A2[:n] = root[:, None] * (Vh[:n] @ Qa.T)
    B2[:, :n] = (Qb @ U[:, :n]) * root
    return A2, B2
