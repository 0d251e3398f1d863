"""KnOTS: TIES-merge LoRAs in a basis their updates share (Stoica et al., "Model Merging
with SVD to Tie the KnOTS", ICLR 2025).

Per module, with ΔW_i = w_i s_i B_i A_i [d_out, d_in] (weights folded in first):
1. align: one SVD of the updates side by side, [ΔW_1 … ΔW_n] = U Σ [V_1ᵀ … V_nᵀ]. U Σ
   [d_out, m] is the basis every task shares and V_i [d_in, m] holds task i's coordinates in
   it: ΔW_i = U Σ V_iᵀ exactly (m ≤ Σ r_i);
2. merge the V_i entry by entry: `knots_ties` trims each to its `density` largest magnitudes
   (per module, as KnOTS is described layer by layer; the authors' code ranks the values of
   Σ V_iᵀ over all layers at once),
   `knots_dare_ties` drops entries at random instead (kept ones rescaled by 1/density,
   seeded); both then elect a sign per entry (the sign of the summed values) and combine the
   entries that agree (`disjoint`): their mean, as TIES (Yadav et al., NeurIPS 2023), peft's
   `ties` and every published KnOTS configuration do, or their sum (the KnOTS code's
   `merging_type="sum"`). The pieces are peft's `merge_utils` functions;
3. ΔW' = λ U Σ V'ᵀ, λ the scaling coefficient (`scaling_coef`) that TIES and KnOTS apply to
   the merged update (both papers choose it on validation data), written as its best
   rank-`rank` approximation (exact when `rank` reaches m; default: the largest input rank),
   scale 1.
Only thin factors are formed: QR of the stacked B's and of each Aᵀ give U Σ and the V_i from
an SVD of a Σr × Σr core, never a d_out × d_in (or d_out × n·d_in) matrix; the V_i of one
module ([n, d_in, m] floats) are the largest tensor.
"""

from collections.abc import Sequence

import torch
from peft.utils.merge_utils import calculate_majority_sign_mask, disjoint_merge, prune

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.lowrank import singular_factors

KNOTS_METHODS = ("knots_ties", "knots_dare_ties")
DISJOINT = ("mean", "sum")  # how the entries that agree with the elected sign are combined
DEFAULT_SCALING_COEF = 1.0
DEFAULT_DISJOINT = "mean"


def knots_merge(
    method: str,
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    *,
    density: float,
    scaling_coef: float = DEFAULT_SCALING_COEF,
    disjoint: str = DEFAULT_DISJOINT,
    rank: int | None = None,
    seed: int = 0,
) -> dict[str, LoraModule]:
    """Merge `adapters` with KnOTS (`method` in `KNOTS_METHODS`) into a rank-`rank` adapter."""
    rank = rank or max(r for a in adapters for r in a.ranks)
    drop = {"knots_ties": "magnitude", "knots_dare_ties": "random"}[method]
    out = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dare's random drop
        for name in sorted(adapters[0].modules):
            mods = [a.modules[name] for a in adapters]
            US, V = aligned(mods, weights)
            A, B = ties_merge(V, density, drop, disjoint).T, US * scaling_coef  # V'ᵀ, λ U Σ
            if rank < A.shape[0]:
                A, B = singular_factors(A, B, rank)
            out[name] = LoraModule(A=A.contiguous(), B=B.contiguous(), scale=1.0)
    return out


def ties_merge(V: torch.Tensor, density: float, drop: str, disjoint: str) -> torch.Tensor:
    """TIES over the first dimension of V: keep `density` of each V[i] (`drop`: "magnitude"
    or "random", rescaled), elect signs, then the mean or the sum of the agreeing entries."""
    kept = torch.stack([prune(v, density, drop, rescale=True) for v in V])
    agree = calculate_majority_sign_mask(kept, method="total")
    if disjoint == "mean":
        return disjoint_merge(kept, agree)
    return (kept * agree).sum(0)


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
