import numpy as np
import pytest
import torch

from ufm.geometry import (
    check_gram,
    etf_gram,
    gram_rank,
    load_gram,
    make_gram,
    minority_weighted_gram,
    orthogonal_gram,
    prototypes_from_gram,
)
from ufm.imbalance import step_counts


def test_etf_has_equal_obtuse_angles_and_rank_k_minus_1():
    for k in (2, 3, 10):
        g = etf_gram(k)
        off = g[~torch.eye(k, dtype=torch.bool)]
        torch.testing.assert_close(off, torch.full_like(off, -1 / (k - 1)))
        assert torch.allclose(g.diagonal(), torch.ones(k, dtype=g.dtype))
        assert gram_rank(g) == k - 1
        assert abs(g.sum().item()) < 1e-12  # the prototypes sum to zero


def test_minority_family_spreads_rare_classes_and_reduces_to_etf():
    counts = step_counts(6, 100, 10)
    torch.testing.assert_close(minority_weighted_gram(counts, 0.0), etf_gram(6))
    torch.testing.assert_close(minority_weighted_gram([7] * 6, 2.0), etf_gram(6))
    g = minority_weighted_gram(counts, 1.0)
    check_gram(g, d=5)
    assert gram_rank(g) == 5
    maj, mino = g[0, 1].item(), g[3, 4].item()
    assert mino < -1 / 5 < maj  # minority pairs more obtuse than the ETF, majority pairs less
    # larger gamma spreads the minority further
    assert minority_weighted_gram(counts, 2.0)[3, 4] < mino


@pytest.mark.parametrize(
    "gram,d",
    [
        (etf_gram(5), 4),
        (etf_gram(5), 16),
        (orthogonal_gram(4), 4),
        (minority_weighted_gram(step_counts(8, 50, 5), 1.5), 9),
    ],
)
def test_prototypes_round_trip(gram, d):
    for seed in (None, 3):
        w = prototypes_from_gram(gram, d, seed=seed)
        assert w.shape == (gram.shape[0], d)
        torch.testing.assert_close(torch.linalg.vector_norm(w, dim=1), torch.ones(len(w), dtype=w.dtype))
        torch.testing.assert_close(w @ w.T, gram, atol=1e-12, rtol=0)


def test_random_low_rank_gram_round_trip():
    gen = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(7, 3, generator=gen, dtype=torch.float64), dim=1)
    g = v @ v.T
    w = prototypes_from_gram(g, 3, dtype=torch.float32)
    assert w.dtype == torch.float32
    torch.testing.assert_close((w @ w.T).double(), g, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "gram,d,message",
    [
        (torch.ones(2, 3), None, "square"),
        (torch.tensor([[1.0, 0.5], [0.4, 1.0]]), None, "not symmetric"),
        (torch.tensor([[2.0, 0.0], [0.0, 1.0]]), None, "unit diagonal"),
        (torch.tensor([[1.0, 1.5], [1.5, 1.0]]), None, "not positive semidefinite"),
        (torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]), None, "non-finite"),
        (etf_gram(6), 4, "rank 5 > embedding dimension d=4"),
    ],
)
def test_invalid_grams_are_refused_with_the_failing_condition(gram, d, message):
    with pytest.raises(ValueError, match=message):
        check_gram(gram, d)
    if d is not None:
        with pytest.raises(ValueError, match=message):
            prototypes_from_gram(gram, d)


def test_tolerance_is_stated_and_applied():
    g = etf_gram(3).clone()
    g[0, 1] += 1e-8
    check_gram(g)  # within 1e-6
    g[0, 1] += 1e-3
    with pytest.raises(ValueError, match="tolerance"):
        check_gram(g)


def test_load_gram_from_files(tmp_path):
    g = etf_gram(4).numpy()
    np.save(tmp_path / "g.npy", g)
    np.savetxt(tmp_path / "g.csv", g, delimiter=",")
    np.savetxt(tmp_path / "g.txt", g)
    for name in ("g.npy", "g.csv", "g.txt"):
        torch.testing.assert_close(load_gram(tmp_path / name), etf_gram(4))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gram(tmp_path / "missing.npy")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv is not a numeric text table"):
        load_gram(tmp_path / "bad.csv")


def test_make_gram_by_name():
    torch.testing.assert_close(make_gram("etf", 3), etf_gram(3))
    torch.testing.assert_close(make_gram("orthogonal", 3), orthogonal_gram(3))
    with pytest.raises(ValueError, match="needs the class counts"):
        make_gram("minority", 3)
    with pytest.raises(ValueError, match="unknown geometry"):
        make_gram("cube", 3)
    with pytest.raises(ValueError, match="k >= 2"):
        etf_gram(1)


def test_prototypes_in_a_large_dimension_are_a_rotation_and_cost_d_times_k():
    """d = 20000 would need a 3.2 GB d x d QR before; the d x k draw realizes G_* in generic coordinates."""
    g = etf_gram(6)
    w = prototypes_from_gram(g, 20000, seed=3)
    assert w.shape == (6, 20000)
    torch.testing.assert_close(w @ w.T, g, atol=1e-12, rtol=0)
    assert int((w.abs() > 1e-12).all(0).sum()) == 20000  # no zero-padded coordinates left
    torch.testing.assert_close(prototypes_from_gram(g, 20000, seed=3), w, atol=0, rtol=0)  # seeded
    assert not torch.allclose(prototypes_from_gram(g, 20000, seed=4), w)


def test_bad_gram_files_name_the_file(tmp_path):
    import os

    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "good.npy", np.eye(3))
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:100])
    (tmp_path / "random.npy").write_bytes(os.urandom(300))
    np.save(tmp_path / "str.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "cplx.npy", np.eye(3, dtype=complex))
    with open(tmp_path / "npz.npy", "wb") as f:
        np.savez(f, g=np.eye(3))
    for name, what in (("empty.npy", "is empty"), ("trunc.npy", "is not a .npy array"), ("random.npy", "is not a .npy"),
                       ("str.npy", "real numbers"), ("cplx.npy", "real numbers"), ("npz.npy", ".npz archive")):
        with pytest.raises(ValueError, match=what) as err:
            load_gram(tmp_path / name)
        assert name in str(err.value)


def test_a_gram_path_that_is_not_a_regular_file_is_named_as_such(tmp_path):
    from ufm.geometry import load_gram

    with pytest.raises(ValueError, match="is not a regular file"):
        load_gram(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gram(tmp_path / "missing.npy")
