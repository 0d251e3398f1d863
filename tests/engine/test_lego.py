import pytest
import torch

from composer.engine.adapters import LoraAdapter, LoraModule
from composer.engine.baselines import merge
from composer.engine.lego import LegoParams, kmeans, lego_merge

PLAIN = dict(param_reweight=False, output_reweight=False)


def _rows(t: torch.Tensor) -> list[tuple]:
    return sorted(tuple(r.tolist()) for r in t)


def test_k_equal_to_all_units_is_the_cat_merge(t5):
    adapters = t5.loaded()
    res = lego_merge(adapters, LegoParams(k=12, units="raw", **PLAIN))
    cat = merge("cat", adapters, weights=[1.0, 1.0, 1.0])
    singular = lego_merge(adapters, LegoParams(k=12, **PLAIN))
    for name, m in res.modules.items():
        torch.testing.assert_close(singular.modules[name].delta(), cat[name].delta())
        assert m.r == 12 and m.scale == 1.0
        torch.testing.assert_close(m.delta(), cat[name].delta(), rtol=1e-5, atol=1e-6)
        # each pooled unit is its own cluster: the merged units are exactly the inputs' units
        pooled = torch.cat(
            [torch.cat([a.modules[name].A, a.modules[name].B.T * 2], 1) for a in adapters]
        )
        assert _rows(torch.cat([m.A, m.B.T], 1)) == _rows(pooled)


def test_single_adapter_with_k_r_comes_back_up_to_permutation(llama):
    (a,) = llama.loaded(llama.adapters[:1])
    res = lego_merge([a], LegoParams(k=4, units="raw", **PLAIN))
    singular = lego_merge([a], LegoParams(k=4, **PLAIN))
    for name, m in res.modules.items():
        torch.testing.assert_close(singular.modules[name].delta(), a.modules[name].delta())
        src = a.modules[name]
        assert _rows(m.A) == _rows(src.A)
        assert _rows(m.B.T) == _rows(src.B.T * src.scale)
        torch.testing.assert_close(m.delta(), src.delta(), rtol=1e-5, atol=1e-6)


def test_deterministic_for_a_seed_and_mixed_ranks(t5):
    adapters = t5.loaded([*t5.adapters, t5.adapter("r2", r=2, alpha=4, seed=7)])
    a = lego_merge(adapters, LegoParams(k=5, seed=3))
    b = lego_merge(adapters, LegoParams(k=5, seed=3))
    c = lego_merge(adapters, LegoParams(k=5, seed=4))
    assert a.k == 5
    for name in a.modules:
        assert torch.equal(a.modules[name].A, b.modules[name].A)
        assert torch.equal(a.modules[name].B, b.modules[name].B)
    assert any(not torch.equal(a.modules[n].A, c.modules[n].A) for n in a.modules)


def test_reweighting(t5):
    adapters = t5.loaded()
    plain = lego_merge(adapters, LegoParams(k=4, **PLAIN))
    out = lego_merge(adapters, LegoParams(k=4, param_reweight=False, output_reweight=True))
    for name in plain.modules:  # same clusters; B scaled by √(mean rank / k) = 1
        torch.testing.assert_close(out.modules[name].B, plain.modules[name].B)
    out = lego_merge(adapters, LegoParams(k=2, param_reweight=False, output_reweight=True))
    flat = lego_merge(adapters, LegoParams(k=2, **PLAIN))
    for name in plain.modules:
        torch.testing.assert_close(out.modules[name].B, flat.modules[name].B * 2**0.5)
    # parameter reweighting: each centroid gets the mean norm of its members (singletons: own)
    norms = lego_merge(adapters, LegoParams(k=12, param_reweight=True, output_reweight=False))
    exact = lego_merge(adapters, LegoParams(k=12, **PLAIN))
    for name in exact.modules:
        torch.testing.assert_close(norms.modules[name].A, exact.modules[name].A)
    # with fewer clusters the centroids' norms grow back to their members' mean norm
    small = lego_merge(adapters, LegoParams(k=3, param_reweight=True, output_reweight=False))
    shrunk = lego_merge(adapters, LegoParams(k=3, **PLAIN))
    for name in small.modules:
        assert (
            small.modules[name].A.norm(dim=1) >= shrunk.modules[name].A.norm(dim=1) - 1e-6
        ).all()


def test_open_choices_are_options(t5):
    adapters = t5.loaded([t5.adapters[0], t5.adapter("r2", r=2, alpha=4, seed=7)])  # ranks 4, 2
    flat = lego_merge(adapters, LegoParams(k=2, **PLAIN))
    for rank, factor in (("mean", 3), ("max", 4), ("min", 2)):
        out = lego_merge(adapters, LegoParams(k=2, param_reweight=False, output_rank=rank))
        for name in flat.modules:
            torch.testing.assert_close(
                out.modules[name].B, flat.modules[name].B * (factor / 2) ** 0.5
            )
    l1 = lego_merge(adapters, LegoParams(k=2, output_reweight=False, norm_ord=1))
    for name, m in l1.modules.items():
        assert not torch.allclose(m.A, flat.modules[name].A)
        assert torch.allclose(
            m.A.norm(p=1, dim=1) / flat.modules[name].A.norm(p=1, dim=1),
            m.A.norm(dim=1) / flat.modules[name].A.norm(dim=1),
        )  # a rescaling
    with pytest.raises(ValueError, match="output_rank must be one of"):
        lego_merge(adapters, LegoParams(output_rank="median"))


def test_kmeans_finds_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = (centres.repeat_interleave(5, 0) + 0.1 * torch.randn(15, 2, generator=gen))[None]
    labels, iters = kmeans(X, 3, generator=torch.Generator().manual_seed(1))
    groups = [set(labels[0, i * 5 : (i + 1) * 5].tolist()) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    assert iters <= 100


def test_too_large_k_is_refused(t5):
    with pytest.raises(ValueError, match="k=13 is larger than the 12 rank-1 units"):
        lego_merge(t5.loaded(), LegoParams(k=13))


def test_units_are_singular_directions_whatever_basis_the_factors_use(t5):
    """B A = (B G)(G⁻¹ A): three adapters whose ΔW has rank 2, stored at r=4 in a random
    basis. Their singular units are 2 per adapter (and zeros), so k=7 clusters hold the 6
    and the zeros: the merge is the exact sum. The stored (raw) units mix those directions
    and their cluster means lose most of it."""
    gen = torch.Generator().manual_seed(0)
    adapters = t5.loaded()
    for a in adapters:
        for name, m in a.modules.items():
            low = torch.randn(m.d_out, 2, generator=gen) @ torch.randn(2, 4, generator=gen)
            G = torch.randn(4, 4, generator=gen)
            a.modules[name] = LoraModule(
                A=torch.linalg.solve(G, m.A), B=low @ G / m.scale, scale=m.scale
            )
    total = {n: sum(a.modules[n].delta() for a in adapters) for n in adapters[0].modules}

    def error(units):
        res = lego_merge(adapters, LegoParams(k=7, units=units, **PLAIN))
        num = sum((res.modules[n].delta() - d).norm() ** 2 for n, d in total.items())
        return float(num / sum(d.norm() ** 2 for d in total.values())) ** 0.5

    assert error("svd") < 1e-4
    assert error("raw") > 0.3
    with pytest.raises(ValueError, match="units must be one of"):
        lego_merge(adapters, LegoParams(units="rows"))


def test_rank1_centroids_keep_the_sum_of_a_cluster():
    """Two inputs whose singular units are the same direction (b aᵀ with scales 3 and 1):
    with k = 1 they form one mixed cluster; the rank-1 centroid is their sum (4 b aᵀ), the
    mean centroid (no reweighting) the product of the mean factors, ((√3 + 1) / 2)² b aᵀ."""
    a, b = torch.tensor([[0.6, 0.8, 0.0]]), torch.tensor([[1.0], [0.0]])
    ins = [
        LoraAdapter(path=None, config={}, modules={"x": LoraModule(A=a, B=b, scale=s)})
        for s in (3.0, 1.0)
    ]
    rank1 = lego_merge(ins, LegoParams(k=1, centroid="rank1", **PLAIN))
    mean = lego_merge(ins, LegoParams(k=1, **PLAIN))
    torch.testing.assert_close(rank1.modules["x"].delta(), 4 * b @ a)
    torch.testing.assert_close(mean.modules["x"].delta(), ((3**0.5 + 1) / 2) ** 2 * b @ a)
    assert rank1.mixed == mean.mixed == {"x": 1}


def test_rank1_centroids_of_singletons_are_the_units(t5):
    adapters = t5.loaded()
    res = lego_merge(adapters, LegoParams(k=12, centroid="rank1", **PLAIN))
    cat = merge("cat", adapters, weights=[1.0, 1.0, 1.0])
    for name, m in res.modules.items():
        torch.testing.assert_close(m.delta(), cat[name].delta(), rtol=1e-4, atol=1e-5)
        assert res.mixed[name] == 0  # every unit is its own cluster
