import json
import math

import numpy as np
import pytest

from ufm.geometry import etf_gram
from ufm.simulate import SimConfig, SimResult, SimulationDiverged, simulate

SMALL = dict(k=4, n_major=8, ratio=4, d=8, batch_size=8, epochs=120, log_every=20, dtype="float64", device="cpu")


def final(result, key):
    return np.array(result.history[-1][key])


def test_balanced_scl_converges_to_the_simplex_etf():
    # Graf et al. 2021: balanced SCL without prototypes, unit features -> simplex ETF.
    cfg = SimConfig(**{**SMALL, "profile": "balanced", "n_w": (0,), "tau": (0.5,), "batching": "full", "epochs": 300})
    result = simulate(cfg)
    assert final(result, "distance")[0] < 0.05
    np.testing.assert_allclose(result.g_m[0], etf_gram(4).numpy(), atol=0.02)


def test_relu_features_under_imbalance_give_the_orthogonal_frame():
    # Kini et al. 2023: full-batch SCL with ReLU features -> orthogonal frame, whatever the imbalance.
    cfg = SimConfig(
        **{**SMALL, "ratio": 4, "n_major": 12, "relu": True, "geometry": "orthogonal", "n_w": (0,), "tau": (1.0,), "batching": "full", "epochs": 300}
    )
    result = simulate(cfg)
    assert final(result, "distance")[0] < 0.05
    assert (result.embeddings >= 0).all()
    np.testing.assert_allclose(result.g_m[0], np.eye(4), atol=0.02)


def test_etf_prototypes_pull_imbalanced_geometry_to_the_target_monotonically():
    cfg = SimConfig(
        **{**SMALL, "n_major": 20, "ratio": 10, "n_w": (0, 10, 100), "tau": (0.5,), "batching": "full", "epochs": 300}
    )
    dist = final(simulate(cfg), "distance")
    assert dist[0] > dist[1] > dist[2]
    assert dist[2] < 0.05 < dist[0]


def test_stacked_runs_equal_the_same_runs_one_by_one():
    cfg = SimConfig(**{**SMALL, "n_w": (0, 50), "tau": (0.2, 1.0), "seeds": (0, 1), "batching": "shuffle", "batch_size": 8})
    stacked = simulate(cfg)
    for i, run in enumerate(cfg.runs):
        alone = simulate(SimConfig(**{**SMALL, "n_w": (run["n_w"],), "tau": (run["tau"],), "seeds": (run["seed"],),
                                      "batching": "shuffle", "batch_size": 8}))
        np.testing.assert_allclose(stacked.embeddings[i], alone.embeddings[0], atol=1e-8)


@pytest.mark.parametrize("batching", ["shuffle", "balanced", "binding"])
def test_same_seed_same_result(batching):
    cfg = SimConfig(**{**SMALL, "epochs": 30, "batching": batching, "batch_size": 8, "loss": "class-averaging"})
    a, b = simulate(cfg), simulate(cfg)
    assert np.array_equal(a.embeddings, b.embeddings)
    other = simulate(SimConfig(**{**cfg.to_dict(), "seeds": (1,)}))
    assert not np.array_equal(a.embeddings[0], other.embeddings[0])


def test_every_loss_and_option_runs_and_stays_on_the_sphere():
    for extra in (
        {"loss": "ce"},
        {"loss": "class-averaging", "batching": "binding", "batch_size": 8},
        {"prototype_anchors": False, "optimizer": "sgd", "schedule": "step", "lr": 0.5},
        {"dtype": "float32", "tol": 1e-4, "epochs": 500},
    ):
        result = simulate(SimConfig(**{**SMALL, "epochs": 40, **extra}))
        norms = np.linalg.norm(result.embeddings, axis=-1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        assert all(math.isfinite(v) for v in final(result, "loss"))


def test_tolerance_stops_early():
    result = simulate(SimConfig(**{**SMALL, "batching": "full", "tol": 1e-3, "epochs": 2000, "schedule": "constant"}))
    assert result.epochs_run < 2000


def test_save_and_load_round_trip(tmp_path):
    result = simulate(SimConfig(**{**SMALL, "epochs": 20}))
    folder = result.save(tmp_path / "run")
    # the folder marker kind.json is the engine's (ufm.single.run_one), not the result's
    assert {p.name for p in folder.iterdir()} == {"config.json", "summary.json", "arrays.npz", "metrics.jsonl"}
    loaded = SimResult.load(folder)
    assert loaded.config == result.config
    np.testing.assert_array_equal(loaded.embeddings, result.embeddings)
    assert loaded.history == json.loads(json.dumps(result.history))
    summary = json.loads((folder / "summary.json").read_text())
    assert [r["n_w"] for r in summary["runs"]] == [0.0, 100.0]
    assert summary["runs"][1]["distance"] == pytest.approx(result.history[-1]["distance"][1])
    # the field's NC metrics of each run's final embeddings, the fixed prototypes as classifier (ufm.nc_metrics)
    import torch

    from ufm.analysis import nc_metrics

    for i, run in enumerate(summary["runs"]):
        nc = nc_metrics(torch.from_numpy(result.embeddings[i]), torch.from_numpy(result.labels), 4,
                        torch.from_numpy(result.prototypes))
        for name, key in (("nc1", "nc1_ref"), ("cdnv", "cdnv"), ("nc2", "nc2"), ("nc3", "nc3"), ("nc4", "nc4")):
            assert run[key] == pytest.approx(nc[name].item(), rel=1e-12), key
        assert run["nc1"] == pytest.approx(result.history[-1]["nc1"][i])  # ufm's own NC1 is kept
    with pytest.raises(FileNotFoundError, match="not a simulation run folder"):
        SimResult.load(tmp_path)


def test_relu_with_negative_target_cosines_warns():
    with pytest.warns(UserWarning, match="negative cosines"):
        result = simulate(SimConfig(**{**SMALL, "epochs": 5, "relu": True}))
    assert result.warnings


def test_divergence_is_reported_with_the_epoch():
    cfg = SimConfig(**{**SMALL, "dtype": "float32", "tau": (1e-39,), "epochs": 5})
    with pytest.raises(SimulationDiverged, match="epoch 1"):
        simulate(cfg)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"n_major": 4, "ratio": 4, "n_w": (0,)}, "single sample"),
        ({"loss": "mse"}, "loss 'mse' is not one of"),
        ({"tau": (0.0,)}, "tau must be > 0"),
        ({"n_w": (-1,)}, "n_w must be >= 0"),
        ({"d": 2}, "rank 3 > embedding dimension d=2"),
        ({"batch_size": 2, "batching": "shuffle"}, "smaller than the number of classes"),
        ({"device": "cuda:0"} if not __import__("torch").cuda.is_available() else {"device": "tpu"}, "device"),
        ({"gram_file": "/nonexistent/g.npy"}, "does not exist"),
    ],
)
def test_bad_configs(overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        simulate(SimConfig(**{**SMALL, "epochs": 2, **overrides}))


def test_relu_features_get_non_negative_prototypes_for_any_non_negative_target(tmp_path):
    import numpy as np
    import torch

    from ufm.simulate import build_problem

    g = np.full((4, 4), 0.3) + 0.7 * np.eye(4)  # non-negative, PSD, not the orthogonal frame
    np.save(tmp_path / "g.npy", g)
    problem = build_problem(SimConfig(k=4, n_major=6, ratio=2.0, relu=True, gram_file=str(tmp_path / "g.npy"), d=8, batching="full"))
    w = problem.prototypes
    assert float(w.min()) >= 0
    torch.testing.assert_close(w @ w.T, torch.as_tensor(g, dtype=w.dtype), atol=1e-6, rtol=0)


def test_explicit_counts_give_the_classes_and_the_size_check():
    from ufm.simulate import build_problem, memory_estimate, num_samples

    cfg = SimConfig(counts="7x2,3,2", epochs=1, d=4, batch_size=8)
    assert build_problem(cfg).counts.tolist() == [7, 7, 3, 2]
    assert num_samples(cfg) == 19
    assert memory_estimate(cfg) < memory_estimate(SimConfig(counts="7x2,3,2,2", epochs=1, d=4, batch_size=8))
    assert set(cfg.without_effect()) >= {"k", "profile", "n_major", "ratio"}
    with pytest.raises(ValueError, match="more than 1000000 classes"):
        SimConfig(counts="5x2000000")
    with pytest.raises(ValueError, match="cannot read counts '5y3'"):
        SimConfig(counts="5y3")
    with pytest.raises(ValueError, match="samples in a class"):  # was an int64 overflow message
        SimConfig(counts="99999999999999999999x2")


def test_a_batch_larger_than_the_data_is_refused_before_any_run(tmp_path):
    from ufm.simulate import build_problem
    from ufm.engine import run_grid as run_sweep

    cfg = SimConfig(counts="4,4,2", epochs=2)
    with pytest.raises(ValueError, match=r"batch_size=32 exceeds the N = 10 samples.*batch_size <= 10"):
        build_problem(cfg)
    with pytest.raises(ValueError, match="batch_size=32 exceeds"):
        run_sweep(tmp_path / "s", "simulate", cfg, {"tau": (0.1, 0.5)})
    assert not (tmp_path / "s" / "points").exists()  # refused before any point ran
    build_problem(SimConfig(counts="4,4,2", epochs=2, batching="full"))


@pytest.mark.parametrize("profile, ratio, fraction", [("step", 10.0, 0.5), ("step", 3.0, 0.3), ("step", 7.0, 0.7),
                                                      ("balanced", 1.0, 0.5), ("long-tail", 10.0, 0.5)])
def test_num_samples_is_the_sum_of_the_counts_it_bounds(profile, ratio, fraction):
    """The size check's N (computed without building the counts) is the counts' sum (an upper bound for long-tail)."""
    from ufm.simulate import build_problem, num_samples

    kw = {"minority_fraction": fraction} if profile == "step" else {}
    cfg = SimConfig(profile=profile, k=10, n_major=23, ratio=ratio, epochs=1, d=10, batch_size=8, **kw)
    total = int(build_problem(cfg).counts.sum())
    assert num_samples(cfg) == total if profile != "long-tail" else total <= num_samples(cfg) <= total + cfg.k
