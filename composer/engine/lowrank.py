"""Singular factors of a product B @ A, computed from the factors alone."""

import torch


def singular_factors(
    A: torch.Tensor, B: torch.Tensor, rank: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A' [..., k, d_in], B' [..., d_out, k] whose units are B @ A's singular directions,
    largest first: B' = U √σ, A' = √σ Vᵀ, truncated to k = `rank` (default: A's row count).
    B' A' is the best rank-k approximation of B A (exact when k reaches its rank); units
    beyond the rank are zero. A [..., R, d_in], B [..., d_out, R] (leading dimensions are
    batched): by QR of both and an SVD of the R × R core, never forming B A.
    """
    k = A.shape[-2] if rank is None else rank
    Qb, Rb = torch.linalg.qr(B)  # [..., d_out, p], [..., p, R]
    Qa, Ra = torch.linalg.qr(A.mT)  # [..., d_in, q], [..., q, R]
    U, S, Vh = torch.linalg.svd(Rb @ Ra.mT)  # [..., p, n], [..., n], [..., n, q]
    n = min(k, S.shape[-1])
    root = S[..., :n].sqrt()
    A2 = A.new_zeros(*A.shape[:-2], k, A.shape[-1])
    B2 = B.new_zeros(*B.shape[:-1], k)
    A2[..., :n, :] = root[..., :, None] * (Vh[..., :n, :] @ Qa.mT)
    B2[..., :n] = (Qb @ U[..., :n]) * root[..., None, :]
    return A2, B2
