"""ufm.nc_metrics against literal implementations of the definitions (explicit loops, numpy, float64) as
rhubarbwu/neural-collapse's measure.py computes them, and closed-form cases."""

import itertools
import math

import numpy as np
import pytest
import torch

import ufm
from ufm.analysis import nc1, nc_report
from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts


def literal(h: np.ndarray, y: np.ndarray, k: int, w: np.ndarray | None = None) -> dict[str, float]:
    """The definitions written out: loops over samples, classes and pairs, numpy float64."""
    n, d = h.shape
    mu = np.stack([h[y == c].mean(0) for c in range(k)])
    mu_g = sum(mu[c] for c in range(k)) / k  # unweighted mean of the class means
    sigma_w = np.zeros((d, d))
    for i in range(n):
        sigma_w += np.outer(h[i] - mu[y[i]], h[i] - mu[y[i]])
    sigma_w /= n
    sigma_b = sum(np.outer(mu[c] - mu_g, mu[c] - mu_g) for c in range(k)) / k
    out = {"nc1": np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10)) / k}
    var = [np.mean([np.sum((h[i] - mu[c]) ** 2) for i in range(n) if y[i] == c]) for c in range(k)]
    out["cdnv"] = np.mean([(var[i] + var[j]) / (2 * np.sum((mu[i] - mu[j]) ** 2))
                           for i, j in itertools.combinations(range(k), 2)])
    ideal = (np.eye(k) - np.ones((k, k)) / k) / math.sqrt(k - 1)
    m = mu - mu_g
    s = m @ m.T
    out["nc2"] = np.linalg.norm(s / np.linalg.norm(s) - ideal)
    if w is not None:
        s = w @ m.T
        out["nc3"] = np.linalg.norm(s / np.linalg.norm(s) - ideal)
        agree = 0
        for i in range(n):
            ncc = min(range(k), key=lambda c: np.sum((h[i] - mu[c]) ** 2))
            linear = max(range(k), key=lambda c: float(w[c] @ h[i]))
            agree += ncc == linear
        out["nc4"] = agree / n
    return out


def _random(counts, d, seed, scale=0.6):
    gen = np.random.default_rng(seed)
    k = len(counts)
    y = np.repeat(np.arange(k), counts)
    gen.shuffle(y)
    centres = gen.normal(size=(k, d))
    h = centres[y] + scale * gen.normal(size=(len(y), d))
    return h, y, gen.normal(size=(k, d))


@pytest.mark.parametrize("counts, d, seed", [([5, 7, 9], 4, 0), ([30, 12, 4, 4, 2], 8, 1), ([6, 6, 6, 6], 2, 2),
                                             ([40, 3, 10, 8, 5, 20, 7], 12, 3)])
def test_nc_metrics_equal_the_literal_definitions(counts, d, seed):
    h, y, w = _random(counts, d, seed)
    k = len(counts)
    expected = literal(h, y, k, w)
    got = ufm.nc_metrics(torch.from_numpy(h), torch.from_numpy(y), k, torch.from_numpy(w))
    assert set(got) == {"nc1", "cdnv", "nc2", "nc3", "nc4"}
    for name, value in expected.items():
        assert got[name].item() == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert 0 < expected["nc4"] < 1  # the case distinguishes agreeing from disagreeing rows
    assert set(ufm.nc_metrics(torch.from_numpy(h), torch.from_numpy(y), k)) == {"nc1", "cdnv", "nc2"}


def test_nc_metrics_of_a_stack_equal_each_run():
    h0, y, w = _random([8, 5, 3], 5, 4)
    h1, _, _ = _random([8, 5, 3], 5, 5)
    y1 = torch.from_numpy(y)
    stacked = ufm.nc_metrics(torch.from_numpy(np.stack([h0, h1])), y1, 3, torch.from_numpy(w))
    single = ufm.nc_metrics(torch.from_numpy(h1), y1, 3, torch.from_numpy(w))
    for name, value in single.items():
        assert stacked[name].shape == (2,)
        assert stacked[name][1].item() == pytest.approx(value.item(), rel=1e-12)


@pytest.mark.parametrize("k, d, counts", [(4, 4, [9, 3, 3, 1]), (6, 9, [2] * 6), (3, 2, [50, 5, 1])])
def test_an_exact_simplex_etf_without_spread_reads_zero_and_prototypes_on_the_means_read_dual(k, d, counts):
    g = etf_gram(k)
    means = 3.0 * prototypes_from_gram(g, d, seed=k) + torch.linspace(-1, 1, d, dtype=torch.float64)  # offset: centred away
    y = labels_from_counts(torch.tensor(counts))
    h = means[y]
    centred = means - means.mean(0)
    out = ufm.nc_metrics(h, y, k, prototypes=centred)
    assert out["nc1"].item() == pytest.approx(0, abs=1e-20)
    assert out["cdnv"].item() == pytest.approx(0, abs=1e-20)
    assert out["nc2"].item() == pytest.approx(0, abs=1e-12)
    assert out["nc3"].item() == pytest.approx(0, abs=1e-12)
    assert out["nc4"].item() == 1.0  # the reference counts agreement: 1 when the classifier is the NCC rule


def test_imbalance_separates_the_reference_nc1_from_ufms_own():
    # ufm's nc1 centres Sigma_B by the mean of all rows, the reference by the mean of the class means: equal when
    # balanced, different under imbalance (both are recorded: nc1 and nc1_ref)
    h, y, w = _random([6, 6, 6], 4, 6)
    ht, yt = torch.from_numpy(h), torch.from_numpy(y)
    assert nc1(ht, yt, 3).item() == pytest.approx(ufm.nc_metrics(ht, yt, 3)["nc1"].item(), rel=1e-10)
    h, y, w = _random([40, 6, 3], 4, 7)
    ht, yt = torch.from_numpy(h), torch.from_numpy(y)
    assert abs(nc1(ht, yt, 3).item() - ufm.nc_metrics(ht, yt, 3)["nc1"].item()) > 1e-3
    report = nc_report(ht, yt, 3, torch.from_numpy(w))
    assert report["nc1_ref"] == pytest.approx(ufm.nc_metrics(ht, yt, 3)["nc1"].item())
    assert set(report) == {"nc1_ref", "cdnv", "nc2", "nc3", "nc4"} and nc_report(ht, yt * 0, 1) == {}


def test_nc_metrics_refuse_what_they_cannot_measure():
    h, y, w = _random([3, 3], 4, 8)
    ht, yt = torch.from_numpy(h), torch.from_numpy(y)
    with pytest.raises(ValueError, match="k >= 2"):
        ufm.nc_metrics(ht, yt * 0, 1)
    with pytest.raises(ValueError, match=r"prototypes must be \[k, d\] = \[2, 4\]"):
        ufm.nc_metrics(ht, yt, 2, torch.from_numpy(w[:, :3]))
    with pytest.raises(ValueError, match="no samples"):
        ufm.nc_metrics(ht, yt, 3)
