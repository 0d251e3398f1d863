"""KnOTS: TIES-merge LoRAs in a basis their updates share (Stoica et al., "Model Merging
with SVD to Tie the KnOTS", ICLR 2025).

Per module, with ΔW_i = w_i s_i B_i A_i [d_out, d_in] (weights folded in first):
1. align: one SVD of the updates side by side, [ΔW_1 … ΔW_n] = U Σ [V_1ᵀ … V_nᵀ]. U Σ
   [d_out, m] is the basis every task shares and V_i [d_in, m] holds task i's coordinates in
   it: ΔW_i = U Σ V_iᵀ exactly (m ≤ Σ r_i);
2. merge the V_i entry by entry: `knots_ties` trims each to its `density` largest magnitudes,
   elects a sign per entry (the sign of the summed values) and takes the mean of the entries
   that agree; `knots_dare_ties` drops entries at random (kept ones rescaled by 1/density,
   seeded) instead of the trim. Both are peft's `merge_utils` functions;
3. ΔW' = U Σ V'ᵀ, written as its best rank-`rank` approximation (exact when `rank` reaches
   m; default: the largest input rank), scale 1.
Only thin factors are formed: QR of the stacked B's and of each Aᵀ give U Σ and the V_i from
an SVD of a Σr × Σr core, never a d_out × d_in (or d_out × n·d_in) matrix; the V_i of one
module ([n, d_in, m] floats) are the largest tensor.
"""

from collections.abc import Sequence

import torch
from peft.utils.merge_utils import dare_ties, ties

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.lowrank import singular_factors

KNOTS_METHODS = ("knots_ties", "knots_dare_ties")


def knots_merge(
    method: str,
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    *,
    density: float,
    rank: int | None = None,
    seed: int = 0,
) -> dict[str, LoraModule]:
    """Merge `adapters` with KnOTS (`method` in `KNOTS_METHODS`) into a rank-`rank` adapter."""
    rank = rank or max(r for a in adapters for r in a.ranks)
    merge_fn = {"knots_ties": ties, "knots_dare_ties": dare_ties}[method]
    out = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dare's random drop
        for name in sorted(adapters[0].modules):
            mods = [a.modules[name] for a in adapters]
            US, V = aligned(mods, weights)
            ones = torch.ones(len(mods))
            merged = merge_fn(list(V), ones, density)  # V' [d_in, m]
            A, B = merged.T, US
            if rank < A.shape[0]:
                A, B = singular_factors(A, B, rank)
            out[name] = LoraModule(A=A.contiguous(), B=B.contiguous(), scale=1.0)
    return out


def aligned(mods: Sequence[LoraModule], weights: Sequence[float]):
    """(U Σ [d_out, m], V [n, d_in, m]) with w_i s_i B_i A_i = U Σ V[i]ᵀ for each input i."""
    B = torch.cat([m.B.float() * (w * m.scale) for m, w in zip(mods, weights, strict=True)], 1)
    Qb, Rb = torch.linalg.qr(B)  # [d_out, p], [p, R]
    # [ΔW_1 … ΔW_n] = B · blockdiag(A_1 … A_n) = Qb · Rb · blockdiag(Ra_iᵀ) · blockdiag(Qa_iᵀ)
    Qas, cores, off = [], [], 0
    for m in mods:
        Qa, Ra = torch.linalg.qr(m.A.float().T)  # [d_in, q_i], [q_i, r_i]
        Qas.append(Qa)
        cores.append(Rb[:, off : off + m.r] @ Ra.T)  # [p, q_i]
        off += m.r
    U, S, Vh = torch.linalg.svd(torch.cat(cores, 1), full_matrices=False)  # core [p, Σq]
    V, off = [], 0
    for Qa in Qas:
        q = Qa.shape[1]
        V.append(Qa @ Vh[:, off : off + q].T)  # [d_in, m]
        off += q
    V = torch.stack(V)
    # Rounding leaves values of order eps where a task has none (e.g. input features it never
    # reads); TIES would count them as agreeing and halve the mean there, so they become 0.
    # V's columns have unit norm, so this bound is relative.
    V[V.abs() <= V.shape[1] ** 0.5 * torch.finfo(V.dtype).eps] = 0
    return (Qb @ U) * S, V
