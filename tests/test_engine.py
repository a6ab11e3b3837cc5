import json
import os
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from ufm.executors import ExecutorConfig, TasksFailed
from ufm.geometry import make_gram
from ufm.imbalance import class_counts
from ufm.runio import read_json
from ufm.simulate import SimConfig, simulate
from ufm.solver import solve
from ufm.engine import gather, plan, run_grid as run_sweep
from ufm.grid import parse_grid
from ufm.kinds.simulate import distance_series
from ufm.spec import SolveConfig
from _tables import assert_table_reads_back

runner = CliRunner()
TINY = SimConfig(k=3, n_major=8, ratio=2.0, d=4, batch_size=8, epochs=12, log_every=4, n_w=(0.0, 10.0), device="cpu")


# ------------------------------------------------------------------------------------------------ grids


def test_parse_grid_uses_the_field_types():
    grid = parse_grid(["ratio=1,10", "k=3,4", "relu=true,no", "loss=scl,ce", "gram_file=none,g.npy", "n_w=0,100",
                       "seeds=1,2"], SimConfig)
    assert grid == {"ratio": (1.0, 10.0), "k": (3, 4), "relu": (True, False), "loss": ("scl", "ce"),
                    "gram_file": (None, "g.npy"), "n_w": ((0.0,), (100.0,)), "seeds": ((1,), (2,))}
    assert isinstance(grid["ratio"][0], float) and isinstance(grid["k"][0], int)
    assert parse_grid(["n_w=5"], SolveConfig) == {"n_w": (5.0,)}  # a plain float in SolveConfig


@pytest.mark.parametrize("spec, message", [
    ("foo=1,2", "unknown grid field 'foo'; SimConfig has profile, n_major"),
    ("k=3,x", "grid value 'x' for k is not an integer"),
    ("ratio=1,inf", "grid value 'inf' for ratio is not a finite number"),
    ("relu=maybe", "grid value 'maybe' for relu is not true or false"),
    ("ratio", "a grid is FIELD=V1,V2,..."),
    ("k=3,3", "grid field k repeats a value"),
    ("loss=scl,", "grid field loss has an empty value"),
])
def test_parse_grid_refuses_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_grid([spec], SimConfig)


def test_plan_names_points_by_values_and_config_hash():
    grid = parse_grid(["ratio=1,4", "tau=0.1,1"], SimConfig)
    points = plan("simulate", TINY, grid)
    assert [p.values for p in points] == [{"ratio": 1.0, "tau": 0.1}, {"ratio": 1.0, "tau": 1.0},
                                          {"ratio": 4.0, "tau": 0.1}, {"ratio": 4.0, "tau": 1.0}]
    assert points[1].config == replace(TINY, ratio=1.0, tau=(1.0,))
    assert points[0].name.startswith("ratio=1,tau=0.1-") and len(points[0].name.split("-")[-1]) == 8
    # the same values under another base config land in another folder; the same config in the same one
    again = plan("simulate", TINY, grid)
    other = plan("simulate", replace(TINY, lr=0.05), grid)
    assert [p.name for p in again] == [p.name for p in points]
    assert all(a.name != b.name and a.name.split("-")[0] == b.name.split("-")[0] for a, b in zip(points, other))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):  # every point is checked up front
        plan("simulate", TINY, {"batch_size": (8, 0)})
    with pytest.raises(ValueError, match="cannot be realized"):  # ... including its problem (counts, G_*)
        plan("simulate", TINY, {"d": (16, 1)})
    with pytest.raises(ValueError, match="unknown kind of experiment"):
        plan("no-such-kind", TINY, grid)


# ------------------------------------------------------------------------------------------------ sweeps


def _direct_rows(cfg, grid):
    """The table computed independently: one simulate() per point, no folders."""
    rows = []
    for p in plan("simulate", cfg, grid):
        for run in simulate(p.config).summary()["runs"]:
            rows.append((tuple(p.values.values()), run["n_w"], run["tau"], run["seed"], run["distance"], run["loss"]))  # "final_loss" in the table
    return rows


def _rows(table):
    return [(tuple(r[k] for k in ("ratio", "tau")), r["n_w"], r["tau"], r["seed"], r["distance"], r["final_loss"])
            for r in table]


def test_sweep_runs_each_point_once_and_resumes(tmp_path):
    grid = parse_grid(["ratio=1,4", "tau=0.1,1"], SimConfig)
    report = run_sweep(tmp_path / "s", "simulate", TINY, grid)
    assert (report["finished"], report["total"], report["ran"], report["skipped"]) == (4, 4, 4, 0)
    assert _rows(report["rows"]) == _direct_rows(TINY, grid)
    assert read_json(tmp_path / "s" / "table.json") == report["rows"]
    csv = (tmp_path / "s" / "table.csv").read_text().splitlines()
    assert csv[0] == ("ratio,tau,n_w,seed,distance,nc1,max_angle_error,angle_majority,angle_minority,angle_across,"
                      "final_loss,nc1_ref,cdnv,nc2,nc3,nc4,point")
    assert_table_reads_back(tmp_path / "s")
    assert len(csv) == 1 + 8 and (tmp_path / "s" / "distance_vs_nw.png").stat().st_size > 1000

    # a killed sweep: one point never finished, another never started; re-running runs just those two
    points = tmp_path / "s" / "points"
    names = sorted(p.name for p in points.iterdir())
    (points / names[0] / "summary.json").unlink()
    for f in (points / names[1]).iterdir():
        f.unlink()
    (points / names[1]).rmdir()
    partial = gather(tmp_path / "s")
    assert (partial["finished"], len(partial["rows"]), sorted(partial["missing"])) == (2, 4, sorted(names[:2]))
    stamps = {n: os.stat(points / n / "summary.json").st_mtime_ns for n in names[2:]}
    again = run_sweep(tmp_path / "s", "simulate", TINY, grid)
    assert (again["ran"], again["skipped"], again["finished"]) == (2, 2, 4)
    assert again["rows"] == report["rows"]
    assert stamps == {n: os.stat(points / n / "summary.json").st_mtime_ns for n in names[2:]}


def test_sweep_refuses_to_mix_folders(tmp_path):
    grid = {"ratio": (1.0, 4.0)}
    run_sweep(tmp_path / "s", "simulate", replace(TINY, epochs=4), grid)
    with pytest.raises(ValueError, match=r"holds a simulation sweep folder with other settings: epochs \(saved 4, "
                       r"asked 5\); re-run it with the same options"):  # names what differs
        run_sweep(tmp_path / "s", "simulate", replace(TINY, epochs=5), grid)
    with pytest.raises(ValueError, match=r"values of ratio \(saved \[1.0, 4.0\], asked \[1.0, 2.0\]\)"):
        run_sweep(tmp_path / "s", "simulate", replace(TINY, epochs=4), {"ratio": (1.0, 2.0)})
    point = next((tmp_path / "s" / "points").iterdir())
    cfg = read_json(point / "config.json")
    # a folder written before a field with a default existed (here: tol at its default) still matches
    assert cfg["tol"] == SimConfig().tol
    (point / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "tol"}))
    assert gather(tmp_path / "s")["finished"] == 2
    (point / "config.json").write_text(json.dumps({**cfg, "lr": 0.5}))
    with pytest.raises(ValueError, match=r"holds a run of another configuration \(lr \(saved 0.5, asked "):
        gather(tmp_path / "s")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files no ufm command wrote \(notes.txt\); it is not a simulation sweep folder"):
        run_sweep(tmp_path / "other", "simulate", TINY, grid)
    with pytest.raises(FileNotFoundError, match="does not exist; give the folder of a set of runs"):
        gather(tmp_path / "nothing")


def test_failed_point_keeps_the_others(tmp_path):
    """A point whose loss overflows (1 / tau = inf in float32) is reported; the other point is in the table."""
    grid = {"tau": ((0.1,), (1e-40,))}
    with pytest.raises(TasksFailed, match="1 of 2 tasks failed; first, tau=1e-40-.*non-finite at epoch 1"):
        run_sweep(tmp_path / "s", "simulate", TINY, grid)
    report = gather(tmp_path / "s")
    assert report["finished"] == 1 and [r["tau"] for r in report["rows"]] == [0.1, 0.1]


def test_solver_sweep_matches_direct_solves(tmp_path):
    base = SolveConfig(k=4, n_major=8, tau=0.1)
    grid = parse_grid(["ratio=1,4", "n_w=0,10"], SolveConfig)
    report = run_sweep(tmp_path / "s", "solve", base, grid)
    assert report["finished"] == 4 and [(r["ratio"], r["n_w"]) for r in report["rows"]] == [
        (1.0, 0.0), (1.0, 10.0), (4.0, 0.0), (4.0, 10.0)]
    for r in report["rows"]:
        counts = class_counts("step", 4, 8, r["ratio"], 0.5)
        g_star = make_gram("etf", 4, counts)
        direct = solve(counts.unsqueeze(0).numpy(), 0.1, g_star if r["n_w"] > 0 else None, r["n_w"])
        assert r["status"] == direct.status and r["objective"] == pytest.approx(direct.objective, rel=1e-7)
        a = direct.gram / np.linalg.norm(direct.gram)
        b = g_star.numpy() / np.linalg.norm(g_star.numpy())
        assert r["distance"] == pytest.approx(np.linalg.norm(a - b), abs=1e-9)
    # balanced classes: the optimum is the ETF with or without prototypes (Graf et al. 2021)
    assert report["rows"][0]["distance"] < 1e-3 and report["rows"][1]["distance"] < 1e-3
    assert report["rows"][2]["distance"] > 0.01  # imbalance moves the n_w = 0 optimum away from it
    arrays = np.load(next((tmp_path / "s" / "points").iterdir()) / "arrays.npz")
    assert arrays["gram"].shape == (4, 4)


def test_local_sweep_equals_inline(tmp_path):
    grid = {"ratio": (1.0, 4.0)}
    inline = run_sweep(tmp_path / "a", "simulate", TINY, grid)
    local = run_sweep(tmp_path / "b", "simulate", TINY, grid, ExecutorConfig(executor="local", workers=2))
    assert local["rows"] == inline["rows"]
    assert len(list((tmp_path / "b" / "logs").glob("*.log"))) == 2


def test_distance_series_over_several_fields():
    rows = [{"ratio": r, "loss": loss, "n_w": w, "seed": s, "distance": r + w + s + (loss == "ce")}
            for r in (1.0, 4.0) for loss in ("scl", "ce") for w in (0.0, 10.0) for s in (0, 1)]
    series = distance_series(rows, ["ratio", "loss"])
    assert list(series) == ["ratio = 1, loss = ce", "ratio = 1, loss = scl", "ratio = 4, loss = ce",
                            "ratio = 4, loss = scl"]
    assert series["ratio = 4, loss = ce"] == ([0.0, 10.0], [4 + 0.5 + 1, 4 + 10 + 0.5 + 1])
    assert list(distance_series(rows, [])) == ["distance"]


# ------------------------------------------------------------------------------------------------ commands


def test_ufm_run_continues_an_interrupted_grid_from_a_notebook(tmp_path):
    """The library entry point: a grid interrupted after its first point continues with the same call."""
    import ufm

    grid = {"ratio": (1.0, 4.0), "tau": ((0.1,), (0.5,))}

    def stop(name, ok):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ufm.run(TINY, tmp_path / "nb", grid=grid, done=stop)
    assert gather(tmp_path / "nb")["finished"] == 1  # the table of what finished is written on the way out
    table = ufm.run(TINY, tmp_path / "nb", grid=grid)
    assert (table["skipped"], table["ran"], table["finished"]) == (1, 3, 4) and len(table["rows"]) == 8  # n_w 0 and 10 stacked
    assert ufm.run(TINY, tmp_path / "nb", grid=grid)["ran"] == 0
    # a list of configs of one kind, named by what differs; identical configs under two names are refused
    listed = ufm.run([TINY, replace(TINY, lr=0.05)], tmp_path / "list")
    assert sorted({r["point"].split("-")[0] for r in listed["rows"]}) == ["lr=0.05", "lr=0.1"]
    with pytest.raises(ValueError, match="would run the same configuration under two names"):
        ufm.run({"a": TINY, "b": TINY}, tmp_path / "same")
    assert not (tmp_path / "same").exists()  # refused before anything was written
    with pytest.raises(ValueError, match="config of no kind of experiment"):
        ufm.run({"a": 1}, tmp_path / "x")


def test_a_set_that_fails_before_any_point_ran_leaves_no_folder(tmp_path):
    """A refused submission (no sbatch here, or a partition SLURM does not have) removes the folder this run created:
    no config.json, kind.json, logs/ or empty table left behind; a folder that held finished points is kept."""
    from ufm.engine import points, run_set

    slurm = ExecutorConfig(executor="slurm", partition="no-such-partition")
    with pytest.raises(ValueError, match="slurm executor needs|sbatch refused"):
        run_set(tmp_path / "s", "simulate", points("simulate", {"a": TINY}), slurm)
    assert not (tmp_path / "s").exists()
    run_set(tmp_path / "t", "simulate", points("simulate", {"a": TINY}))
    with pytest.raises(ValueError, match="slurm executor needs|sbatch refused"):
        run_set(tmp_path / "t", "simulate", points("simulate", {"a": TINY, "b": replace(TINY, seeds=(1,))}), slurm,
                extend=True)
    assert (tmp_path / "t" / "points" / "a" / "summary.json").is_file()


def test_a_solve_sweep_plot_marks_uncertified_points():
    """distance_vs_nw.png of solves: a point resting on a solve that is not "optimal" is flagged (drawn hollow)."""
    from ufm.kinds.simulate import certified_series

    table = [{"ratio": 1.0, "n_w": 0.0, "distance": 0.1, "status": "optimal"},
             {"ratio": 1.0, "n_w": 1e8, "distance": 0.01, "status": "optimal_inaccurate"},
             {"ratio": 4.0, "n_w": 0.0, "distance": 0.2}]
    assert certified_series(table, ["ratio"]) == {"ratio = 1": [True, False], "ratio = 4": [True]}
