import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ufm.analysis import (
    angle_errors_deg,
    class_means,
    geometry_summary,
    gram_distance,
    group_angles,
    mean_gram,
    nc1,
)
from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts, minority_mask, step_counts


def random_features(counts, d, seed=0):
    y = labels_from_counts(counts)
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(len(y), d, generator=gen, dtype=torch.float64), dim=-1), y


def test_class_means_match_a_loop():
    h, y = random_features([3, 5, 2], 4)
    means = class_means(h, y, 3)
    for c in range(3):
        torch.testing.assert_close(means[c], h[y == c].mean(0))
    centered = class_means(h, y, 3, center=True)
    # centred by the plain average of the k class means, not by the mean of all rows
    torch.testing.assert_close(centered, means - torch.stack([h[y == c].mean(0) for c in range(3)]).mean(0))
    with pytest.raises(ValueError, match=r"classes \[3\] have no samples"):
        class_means(h, y, 4)


def test_collapsed_features_reproduce_the_target():
    counts = step_counts(5, 6, 3)
    g = etf_gram(5)
    w = prototypes_from_gram(g, 8, seed=1)
    y = labels_from_counts(counts)
    h = w[y]
    torch.testing.assert_close(mean_gram(h, y, 5), g)
    assert gram_distance(mean_gram(h, y, 5), g).item() < 1e-12
    assert angle_errors_deg(mean_gram(h, y, 5), g).abs().max() < 1e-5
    assert nc1(h + 1e-9, y, 5).item() < 1e-12


def test_gram_distance_is_the_normalized_frobenius_distance():
    a = np.array([[1.0, 0.2], [0.2, 1.0]])
    b = np.eye(2)
    expected = np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b))
    assert gram_distance(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(expected)
    assert gram_distance(torch.tensor(3 * a), torch.tensor(a)).item() == pytest.approx(0.0, abs=1e-12)


def test_nc1_matches_an_explicit_computation():
    h, y = random_features([4, 6, 5], 3, seed=2)
    hn, yn = h.numpy(), y.numpy()
    mu = np.stack([hn[yn == c].mean(0) for c in range(3)])
    mu_g = hn.mean(0)
    sw = sum(np.outer(hn[i] - mu[yn[i]], hn[i] - mu[yn[i]]) for i in range(len(yn))) / len(yn)
    sb = sum(np.outer(mu[c] - mu_g, mu[c] - mu_g) for c in range(3)) / 3
    expected = np.trace(sw @ np.linalg.pinv(sb)) / 3
    assert nc1(h, y, 3).item() == pytest.approx(expected, rel=1e-8)


def test_group_angles_of_an_etf_and_nan_for_missing_groups():
    g = etf_gram(4)
    angle = math.degrees(math.acos(-1 / 3))
    out = group_angles(g, torch.tensor([False, False, True, True]))
    for key in ("majority", "minority", "across"):
        assert out[key].item() == pytest.approx(angle)
    out = group_angles(g, torch.zeros(4, dtype=torch.bool))
    assert math.isnan(out["minority"].item()) and math.isnan(out["across"].item())


def test_summary_works_on_stacks():
    counts = step_counts(4, 5, 5)
    h0, y = random_features(counts, 6, seed=0)
    h1, _ = random_features(counts, 6, seed=1)
    stacked = geometry_summary(torch.stack([h0, h1]), y, etf_gram(4), minority_mask(counts))
    single = geometry_summary(h1, y, etf_gram(4), minority_mask(counts))
    for key, value in single.items():
        assert stacked[key].shape == (2,)
        assert stacked[key][1].item() == pytest.approx(value.item())


def test_issue_case_exact_etf_reads_zero_centered_under_imbalance():
    # k = 5, counts 80/50/35/20/15, class means exactly on the simplex ETF (uncentred they are not: G_M of
    # the raw means is the ETF itself only because the ETF's vectors already sum to zero).  Centring by the
    # mean of all rows read 0.396 here; centring by the average of the class means reads 0.
    counts = [80, 50, 35, 20, 15]
    g = etf_gram(5)
    y = labels_from_counts(torch.tensor(counts))
    h = prototypes_from_gram(g, 7, seed=3)[y]
    assert gram_distance(mean_gram(h, y, 5, center=True), g).item() < 1e-12
    weighted = F.normalize(class_means(h, y, 5) - h.mean(0), dim=-1)  # the old convention, for contrast
    assert gram_distance(weighted @ weighted.T, g).item() > 0.3


@pytest.mark.parametrize("seed", range(6))
def test_exact_etf_class_means_read_zero_centered_under_any_counts(seed):
    gen = torch.Generator().manual_seed(seed)
    k = int(torch.randint(3, 9, (1,), generator=gen))
    d = k + int(torch.randint(0, 5, (1,), generator=gen))
    counts = torch.randint(1, 60, (k,), generator=gen)
    g = etf_gram(k)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    # ETF vectors, rotated, scaled and shifted: centring removes any common offset, normalizing any scale
    offset = torch.randn(d, generator=gen, dtype=torch.float64)
    mu = 2.5 * prototypes_from_gram(g, d, seed=seed) @ q + offset
    y = labels_from_counts(counts)
    y = y[torch.randperm(len(y), generator=gen)]
    h = mu[y]
    assert gram_distance(mean_gram(h, y, k, center=True), g).item() < 1e-10
    # within-class noise that leaves the class means on the ETF only approximately: small but nonzero
    noisy = h + 0.05 * torch.randn(h.shape, generator=gen, dtype=torch.float64)
    dist = gram_distance(mean_gram(noisy, y, k, center=True), g).item()
    assert 1e-6 < dist < 0.2
    # and exact again if the noise averages to zero within each class
    noise = noisy - h
    noise = noise - class_means(noise, y, k)[y]
    assert gram_distance(mean_gram(h + noise, y, k, center=True), g).item() < 1e-10


@pytest.mark.parametrize("n, d, k", [(200, 16, 5), (150, 8, 10), (100, 3, 4)])
def test_nc1_equals_the_d_by_d_pseudo_inverse_formula(n, d, k):
    """NC1 in the span of the class means equals tr(Sigma_W Sigma_B^+) / k with d x d matrices (also when d < k)."""
    import math

    gen = torch.Generator().manual_seed(n + d)
    h = torch.randn(3, n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=gen)
    onehot = torch.nn.functional.one_hot(y, k).double()
    mu = (onehot.T @ h) / onehot.sum(0)[:, None]
    within = h - onehot @ mu
    between = mu - h.mean(-2, keepdim=True)
    sigma_w = within.transpose(-1, -2) @ within / n
    pinv = torch.linalg.pinv(between.transpose(-1, -2) @ between / k, hermitian=True, rtol=math.sqrt(2.2e-16))
    expected = (sigma_w * pinv).sum((-2, -1)) / k
    torch.testing.assert_close(nc1(h, y, k), expected, rtol=1e-9, atol=0)


def test_gram_distance_takes_arrays():
    g = etf_gram(4)
    assert float(gram_distance(g.numpy(), g.numpy())) == 0.0
    assert float(gram_distance(torch.eye(4, dtype=torch.float64).numpy(), g)) == pytest.approx(
        float(gram_distance(torch.eye(4, dtype=torch.float64), g)))
