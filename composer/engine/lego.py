"""LoRA-LEGO: merge LoRAs by clustering their rank-1 units (MSUs).

Per LoRA-targeted module, every input's units (a_i, b_i: by default the singular directions
of its ΔW_n = w_n · s_n · B A, see below) are pooled (Σ r_n units, ranks may differ),
clustered into k groups by k-means on the features [a_i ; b_i], and each centroid becomes one
rank-1 unit of the merged adapter (rank k, scale 1).
Then the dual reweighting undoes the shrinkage of averaging:
- parameter reweighting: each centroid's a and b are rescaled to the mean L2 norm of the
  a's and b's of its members;
- output reweighting: B' is scaled by √(r̄/k), r̄ = the mean input rank of the module.

Choices the paper leaves open, with our defaults (`LegoParams`): the units of an input are
its ΔW's singular directions, b_i = √σ_i u_i and a_i = √σ_i v_i (`units="svd"`), rather than
the stored rows of A and columns of B (`units="raw"`, the paper's literal MSUs). Both give
the same ΔW, but B A = (B G)(G⁻¹ A) for any invertible G, so the stored factors are one
arbitrary basis: trained from peft's random A, each raw unit mixes several directions, and a
centroid of raw units (even of one adapter's) is far from the sum it stands for. Singular
units are canonical and put the energy in a few units: on the merge benchmark's three
task adapters (r=16, merged to k=16) raw units lost every task (exact match ≤ 0.02, ΔW
relative error 0.66), singular units keep them (see the README). k = the largest input rank;
features are the raw [a; b] (`normalize=True` L2-normalises each part for the distance only;
centroids are always means of the raw parameters); k-means++ seeded by `seed`, at most
`max_iter` Lloyd iterations (stops when assignments no longer change); an emptied cluster
keeps its previous centroid; parameter reweighting restores L2 norms (`norm_ord`); r̄ is the
mean input rank (`output_rank`: "mean", "max" or "min").

Speed and memory: modules with the same shapes and unit count are clustered together,
batched ([M, R, D] tensors and bmm), in chunks of at most `chunk_mb` MiB of features.
Results are deterministic for a seed and a chunk size.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.base_models import resolve_device
from composer.engine.compat import check_compatible
from composer.engine.lowrank import singular_factors

OUTPUT_RANKS = ("mean", "max", "min")
UNITS = ("svd", "raw")
CENTROIDS = ("mean", "rank1")


@dataclass
class LegoParams:
    k: int | None = None  # merged rank (None: the largest input rank)
    param_reweight: bool = True
    output_reweight: bool = True
    norm_ord: float = 2.0  # the norm parameter reweighting restores (2: L2)
    output_rank: str = "mean"  # r in √(r/k): the "mean", "max" or "min" input rank
    normalize: bool = False  # L2-normalise the a and b parts of the features for the distance
    units: str = "svd"  # an input's units: its ΔW's singular directions ("svd") or "raw"
    # a cluster's unit: the "mean" of its members (the paper), or "rank1": the best rank-1
    # approximation of their summed b aᵀ (parameter reweighting then does not apply)
    centroid: str = "mean"
    weights: list[float] | None = None  # per-input weights folded into b (default: 1 each)
    max_iter: int = 100
    seed: int = 0
    chunk_mb: int = 512
    device: str | None = None  # where to cluster (default: CUDA when available)

    def validate(self, n_inputs: int) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k (the merged rank) must be at least 1, got {self.k}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {self.units!r}")
        if self.centroid not in CENTROIDS:
            raise ValueError(f"centroid must be one of {CENTROIDS}, got {self.centroid!r}")
        if self.output_rank not in OUTPUT_RANKS:
            raise ValueError(f"output_rank must be one of {OUTPUT_RANKS}, got {self.output_rank!r}")
        if not self.norm_ord > 0:
            raise ValueError(f"norm_ord must be positive, got {self.norm_ord}")
        if self.weights is not None and len(self.weights) != n_inputs:
            raise ValueError(f"{len(self.weights)} weights for {n_inputs} adapters")


@dataclass
class LegoResult:
    modules: dict[str, LoraModule]
    k: int
    iterations: dict[str, int]  # Lloyd iterations per module
    mixed: dict[str, int]  # per module: clusters whose members come from several inputs
    seconds: float


def lego_merge(adapters: Sequence[LoraAdapter], params: LegoParams | None = None) -> LegoResult:
    """Merge `adapters` into one rank-k adapter (scale 1) by rank-wise clustering."""
    params = params or LegoParams()
    params.validate(len(adapters))
    check_compatible(adapters, "lego")
    start = time.perf_counter()
    k = params.k or max(r for a in adapters for r in a.ranks)
    device = resolve_device(params.device)
    weights = params.weights or [1.0] * len(adapters)
    gen = torch.Generator(device=device).manual_seed(params.seed)
    names = sorted(adapters[0].modules)
    units = {n: sum(a.modules[n].r for a in adapters) for n in names}
    too_few = [n for n in names if units[n] < k]
    if too_few:
        raise ValueError(
            f"k={k} is larger than the {units[too_few[0]]} rank-1 units pooled at {too_few[0]}"
        )
    groups: dict[tuple, list[str]] = {}
    for n in names:
        m = adapters[0].modules[n]
        shape = (m.d_in, m.d_out, tuple(a.modules[n].r for a in adapters))
        groups.setdefault(shape, []).append(n)
    modules: dict[str, LoraModule] = {}
    iterations: dict[str, int] = {}
    mixed: dict[str, int] = {}
    for (d_in, d_out, ranks), group in groups.items():
        owner = torch.repeat_interleave(torch.arange(len(ranks)), torch.tensor(ranks)).to(device)
        R, D = sum(ranks), d_in + d_out
        per_module = R * D * 4 * (2 if params.normalize else 1)
        chunk = max(1, (params.chunk_mb << 20) // per_module)
        for i in range(0, len(group), chunk):
            part = group[i : i + chunk]
            X = _pooled_units(adapters, part, weights, device, params.units)  # [M, R, D]
            feats = _normalized(X, d_in) if params.normalize else X
            labels, iters = kmeans(feats, k, generator=gen, max_iter=params.max_iter)
            del feats
            if params.centroid == "rank1":
                A, B = _rank1_centroids(X, labels, k, d_in)
            else:
                norm_ord = params.norm_ord if params.param_reweight else None
                A, B = _centroids(X, labels, k, d_in, norm_ord=norm_ord)
            n_mixed = _mixed_clusters(labels, owner, k)
            if params.output_reweight:
                r = {"mean": sum(ranks) / len(ranks), "max": max(ranks), "min": min(ranks)}
                B *= math.sqrt(r[params.output_rank] / k)
            for j, n in enumerate(part):
                modules[n] = LoraModule(A=A[j].cpu(), B=B[j].cpu(), scale=1.0)
                iterations[n], mixed[n] = iters, int(n_mixed[j])
    return LegoResult(modules, k, iterations, mixed, time.perf_counter() - start)


def _pooled_units(adapters, names, weights, device, units: str) -> torch.Tensor:
    """[M, R, d_in + d_out]: row = one unit [a ; b] of one input (w·s folded into b), inputs
    in order; `units="svd"`: each input's singular units instead of its stored factors."""
    first = adapters[0].modules[names[0]]
    d_in = first.d_in
    R = sum(a.modules[names[0]].r for a in adapters)
    X = torch.empty(len(names), R, d_in + first.d_out, device=device)
    for j, n in enumerate(names):
        off = 0
        for a, w in zip(adapters, weights, strict=True):
            m = a.modules[n]
            A = m.A.to(device, torch.float32)
            B = m.B.to(device, torch.float32) * (w * m.scale)
            if units == "svd":
                A, B = singular_factors(A, B)
            X[j, off : off + m.r, :d_in] = A
            X[j, off : off + m.r, d_in:] = B.T
            off += m.r
    return X


def _normalized(X: torch.Tensor, d_in: int) -> torch.Tensor:
    a, b = X[..., :d_in], X[..., d_in:]
    eps = torch.finfo(X.dtype).tiny
    return torch.cat(
        [
            a / a.norm(dim=-1, keepdim=True).clamp_min(eps),
            b / b.norm(dim=-1, keepdim=True).clamp_min(eps),
        ],
        dim=-1,
    )


def kmeans(
    X: torch.Tensor, k: int, *, generator: torch.Generator, max_iter: int = 100
) -> tuple[torch.Tensor, int]:
    """Batched k-means with k-means++ init. X [M, R, D] -> labels [M, R], iterations run.

    Squared distances ‖x‖² − 2x·c + ‖c‖² by bmm; a chosen centre's own distance is set to
    exactly 0, so with k = R every (distinct) point becomes its own cluster.
    """
    M, R, _ = X.shape
    rows = torch.arange(M, device=X.device)
    x2 = (X * X).sum(-1)  # [M, R]
    chosen = torch.zeros(M, R, dtype=torch.bool, device=X.device)
    idx = torch.randint(R, (M,), generator=generator, device=X.device)
    centers = [idx]
    chosen[rows, idx] = True
    d2 = _sq_dist(X, x2, X[rows, idx][:, None]).squeeze(-1).masked_fill(chosen, 0)
    for _ in range(1, k):
        probs = d2.masked_fill(chosen, 0)
        flat = probs.sum(-1) <= 0  # every remaining point coincides with a centre
        probs = torch.where(flat[:, None], (~chosen).to(X.dtype), probs)
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        centers.append(idx)
        chosen[rows, idx] = True
        d_new = _sq_dist(X, x2, X[rows, idx][:, None]).squeeze(-1)
        d2 = torch.minimum(d2, d_new).masked_fill(chosen, 0)
    C = X[rows[:, None], torch.stack(centers, 1)]  # [M, k, D]
    labels = torch.empty(M, R, dtype=torch.long, device=X.device)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        new = _sq_dist(X, x2, C).argmin(-1)
        if it > 1 and torch.equal(new, labels):
            break
        labels = new
        onehot = torch.nn.functional.one_hot(labels, k).to(X.dtype).transpose(1, 2)  # [M, k, R]
        counts = onehot.sum(-1, keepdim=True)  # [M, k, 1]
        C = torch.where(counts > 0, torch.bmm(onehot, X) / counts.clamp_min(1), C)
    return labels, it


def _sq_dist(X: torch.Tensor, x2: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """[M, R, k] squared distances between points X [M, R, D] and centres C [M, k, D]."""
    c2 = (C * C).sum(-1)  # [M, k]
    return (x2[:, :, None] - 2 * torch.bmm(X, C.transpose(1, 2)) + c2[:, None, :]).clamp_min(0)


def _mixed_clusters(labels: torch.Tensor, owner: torch.Tensor, k: int) -> torch.Tensor:
    """[M]: clusters holding units of more than one input (labels [M, R], owner [R])."""
    n_inputs = int(owner.max()) + 1
    slot = labels * n_inputs + owner  # [M, R]: (cluster, input) pairs
    hits = torch.zeros(labels.shape[0], k * n_inputs, device=labels.device)
    hits.scatter_add_(1, slot, torch.ones_like(slot, dtype=hits.dtype))
    return hits.view(-1, k, n_inputs).gt(0).sum(-1).gt(1).sum(-1)


def _rank1_centroids(X, labels, k, d_in):
    """Merged A [M, k, d_in] and B [M, d_out, k]: unit j is the best rank-1 approximation of
    Σ b_i a_iᵀ over cluster j's members (each cluster's sum, not its mean)."""
    M, _, D = X.shape
    A = X.new_zeros(M, k, d_in)
    B = X.new_zeros(M, D - d_in, k)
    for j in range(k):
        members = (labels == j).to(X.dtype)[..., None]  # [M, R, 1]
        Xj = X * members
        a, b = singular_factors(Xj[..., :d_in], Xj[..., d_in:].mT, 1)
        A[:, j], B[..., j] = a[:, 0], b[..., 0]
    return A, B


def _centroids(X, labels, k, d_in, *, norm_ord: float | None):
    """Merged A [M, k, d_in] and B [M, d_out, k] from the raw units' cluster means."""
    onehot = torch.nn.functional.one_hot(labels, k).to(X.dtype).transpose(1, 2)  # [M, k, R]
    counts = onehot.sum(-1, keepdim=True).clamp_min(1)
    C = torch.bmm(onehot, X) / counts  # [M, k, D]
    A, Bt = C[..., :d_in], C[..., d_in:]
    if norm_ord is not None:  # parameter reweighting
        eps = torch.finfo(X.dtype).tiny
        for part, lo, hi in ((A, 0, d_in), (Bt, d_in, X.shape[-1])):
            norms = torch.linalg.vector_norm(X[..., lo:hi], ord=norm_ord, dim=-1, keepdim=True)
            mean_norm = torch.bmm(onehot, norms) / counts
            own = torch.linalg.vector_norm(part, ord=norm_ord, dim=-1, keepdim=True)
            part *= mean_norm / own.clamp_min(eps)
    return A.contiguous(), Bt.transpose(1, 2).contiguous()
