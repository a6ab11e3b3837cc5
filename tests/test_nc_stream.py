"""ufm.nc_stream: the streaming statistics equal the one-shot functions of ufm.analysis (float64, 1e-10), in any
batching, with classes absent from batches, a large common offset, and state whose size does not depend on N."""

import pytest
import torch

from ufm.analysis import class_means, geometry_summary, gram_distance, mean_gram, nc1, nc_metrics, nc_report
from ufm.geometry import etf_gram
from ufm.nc_stream import NCAccumulator, stream_nc_metrics

K, D = 5, 7


def data(n: int = 60, seed: int = 0, offset: float = 0.0, dtype=torch.float64):
    """Rows around distinct class centres (every class present), labels in random order, ``[n, D]``, ``[n]``."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.arange(K), torch.randint(0, K, (n - K,), generator=gen)])[torch.randperm(n, generator=gen)]
    centres = 3 * torch.randn(K, D, generator=gen, dtype=torch.float64)
    h = offset + centres[y] + torch.randn(n, D, generator=gen, dtype=torch.float64)
    return h.to(dtype), y


def batched(h: torch.Tensor, y: torch.Tensor, size: int):
    return [(h[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def accumulate(h, y, size: int) -> NCAccumulator:
    stats = NCAccumulator(K)
    for hb, yb in batched(h, y, size):
        stats.update(hb, yb)
    return stats


def close(a, b, tol: float = 1e-10) -> bool:
    return bool(torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                               rtol=tol, atol=tol))


@pytest.mark.parametrize("size", [1, 3, 17, 60])
def test_every_measure_equals_the_one_shot_functions(size):
    h, y = data()
    w = torch.randn(K, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    stats = accumulate(h, y, size)
    assert stats.n == 60 and torch.equal(stats.counts, torch.bincount(y, minlength=K))
    for center in (False, True):
        assert close(stats.class_means(center), class_means(h, y, K, center))
        assert close(stats.mean_gram(center), mean_gram(h, y, K, center))
        assert close(stats.gram_distance(etf_gram(K), center), gram_distance(mean_gram(h, y, K, center), etf_gram(K)))
    assert close(stats.nc1(), nc1(h, y, K))
    one_shot = nc_metrics(h, y, K, w)
    streamed = stream_nc_metrics(lambda: batched(h, y, size), K, w)
    assert set(streamed) == set(one_shot) == {"nc1", "cdnv", "nc2", "nc3", "nc4"}
    for key in one_shot:
        assert close(streamed[key], one_shot[key]), key
    minority = torch.tensor([False, False, True, True, True])
    summary = geometry_summary(h, y, etf_gram(K), minority)
    for key, value in stats.geometry_summary(etf_gram(K), minority).items():
        assert close(value, summary[key]), key
    agreement = stats.agreement(w)
    for hb, _ in batched(h, y, 7):
        agreement.update(hb)
    assert stats.nc_report(w, agreement) == pytest.approx(nc_report(h, y, K, w), rel=1e-10, abs=1e-12)


def test_classes_absent_from_batches_and_the_within_class_scatter():
    h, y = data(n=40, seed=3)
    order = torch.argsort(y, stable=True)  # sorted by class: most batches hold one class only
    h, y = h[order], y[order]
    stats = accumulate(h, y, 4)
    mu = class_means(h, y, K)
    within = h - mu[y]
    assert close(stats.scatter, within.T @ within)
    assert close(stats.variances, torch.stack([within[y == c].square().sum(1).mean() for c in range(K)]))
    assert close(stream_nc_metrics(lambda: batched(h, y, 4), K)["cdnv"], nc_metrics(h, y, K)["cdnv"])


def test_a_large_common_offset_costs_no_accuracy():
    """1e6 on every coordinate, spread 1: raw sums of squares would lose ~1e-4 in Sigma_W; the pairwise update
    keeps the one-shot values (which subtract the class means from the rows directly)."""
    h, y = data(n=200, seed=4, offset=1e6)
    one_shot = nc_metrics(h, y, K)
    for size in (1, 13):
        streamed = stream_nc_metrics(lambda: batched(h, y, size), K)
        for key in one_shot:
            assert close(streamed[key], one_shot[key], 1e-8), (key, size)


def test_float32_batches_are_accumulated_in_float64():
    h, y = data(dtype=torch.float32)
    stats = accumulate(h, y, 8)
    assert stats.class_means().dtype == torch.float64
    assert close(stats.nc_metrics()["nc1"], nc_metrics(h.double(), y, K)["nc1"])


def test_the_state_does_not_grow_with_the_rows():
    sizes = []
    for n in (20, 2000):
        h, y = data(n=n)
        stats = accumulate(h, y, 10)
        sizes.append(sum(t.numel() for t in (stats._counts, stats._means, stats._m2, stats._scatter)))
    assert sizes[0] == sizes[1] == 2 * K + K * D + D * D


def test_a_class_without_samples_is_refused_with_one_clear_error():
    h, y = data()
    stats = accumulate(h[y != 2], y[y != 2], 9)
    for read in (stats.class_means, stats.nc1, stats.nc_metrics, stats.mean_gram):
        with pytest.raises(ValueError, match=r"classes \[2\] have no samples"):
            read()
    with pytest.raises(ValueError, match="no batch was added"):
        NCAccumulator(K).nc_metrics()


@pytest.mark.parametrize("h, y, match", [
    (torch.zeros(3, D, dtype=torch.long), torch.zeros(3, dtype=torch.long), "floating tensor"),
    (torch.zeros(3), torch.zeros(3, dtype=torch.long), r"\[b, d\]"),
    (torch.zeros(3, D), torch.zeros(4, dtype=torch.long), "one per row"),
    (torch.zeros(3, D), torch.zeros(3), "integer tensor"),
    (torch.zeros(3, D), torch.tensor([0, 1, K]), r"labels must lie in \[0, 5\)"),
    (torch.zeros(3, D + 1), torch.zeros(3, dtype=torch.long), "same d"),
])
def test_bad_batches_are_refused(h, y, match):
    stats = NCAccumulator(K).update(torch.zeros(2, D), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=match):
        stats.update(h, y)


def test_bad_prototypes_k_and_second_passes_are_refused():
    h, y = data()
    stats = accumulate(h, y, 10)
    with pytest.raises(ValueError, match=r"prototypes must be \[k, d\] = \[5, 7\]"):
        stats.nc_metrics(torch.zeros(K, D + 1))
    with pytest.raises(ValueError, match="positive integer"):
        NCAccumulator(0)
    with pytest.raises(ValueError, match="k >= 2"):
        NCAccumulator(1).update(h, torch.zeros(len(h), dtype=torch.long)).nc_metrics()
    with pytest.raises(ValueError, match="saw no rows"):
        stats.agreement(torch.zeros(K, D)).value()
    calls = iter([batched(h, y, 10), batched(h[:30], y[:30], 10)])
    with pytest.raises(ValueError, match="same rows each time"):
        stream_nc_metrics(lambda: next(calls), K, torch.zeros(K, D))
