"""Planning a set of training runs in one folder (ufm.deep.plan)."""

from ufm.deep.config import TrainConfig


def _config(root, seed):
    return TrainConfig(dataset="cifar10", data_root=str(root), n_major=12, ratio=4.0, width=4, embed_dim=16, epochs=1,
                       batch_size=16, device="cpu", seed=seed)


def test_a_set_continued_with_other_runs_keeps_listing_the_earlier_ones(tmp_path):
    """A training set given other runs (a study given more seeds) keeps listing the runs it holds (ufm.records)."""
    from ufm.grid import Point
    from ufm.records import merged, record

    root = tmp_path / "data"
    out = tmp_path / "set"
    (out / "seed=0").mkdir(parents=True)  # the first run has started
    (out / "config.json").write_text(__import__("json").dumps(record("train", [Point("seed=0", {"seed": 0},
                                                                                     _config(root, 0))])))
    rec = merged(out, "", record("train", [Point("seed=1", {"seed": 1}, _config(root, 1))]))
    assert rec["points"] == ["seed=0", "seed=1"] and rec["values"] == [{"seed": 0}, {"seed": 1}]
    assert [c["seed"] for c in rec["configs"]] == [0, 1]
    (out / "seed=0").rmdir()  # a run whose folder is gone is no longer listed
    assert merged(out, "", record("train", [Point("seed=1", {}, _config(root, 1))]))["points"] == ["seed=1"]


def _folder(root, classes, n=12):
    """An image-folder data set with ``classes`` classes of ``n`` training and 4 test images (random pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(classes)
    for split, count in (("train", n), ("test", 4)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_runs_that_would_be_identical_are_refused_before_any_trains(tmp_path):
    """A preset, grid or list whose runs agree in every field with an effect (an option erased what told them apart,
    or it only differed in a field without effect) trains nothing: one line naming the two runs, exit 2."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    root = _folder(tmp_path / "data", 3)
    base = ["train", "--dataset", "folder", "--data-root", str(root), "--width", "4", "--batch-size", "8",
            "--n-major", "10", "--ratio", "5", "--embed-dim", "8", "--epochs", "1", "--device", "cpu"]
    for extra in (["--preset", "cpu-small", "--n-w", "5"], ["--preset", "cpu-small", "--loss", "ce"],
                  ["--grid", "n_w=0,100", "--loss", "ce"]):
        out = tmp_path / "_".join(extra).replace("-", "")
        result = CliRunner().invoke(app, [*base, *extra, "--out", str(out)])
        assert result.exit_code == 2, (extra, result.output)
        text = result.output.strip()
        assert len(text.splitlines()) == 1, text
        assert "would run the same configuration under two names" in text or "would run identical runs" in text, text
        assert not out.exists() or not any(out.rglob("checkpoint.pt"))


def test_a_set_that_cannot_share_its_figure_is_refused_before_any_trains(tmp_path):
    """Runs on data sets of different numbers of classes cannot share the set's Figure 1: refused up front (was:
    both trained, then exit 2 at the figure, and again on every re-run)."""
    from typer.testing import CliRunner

    from ufm.cli.main import app

    four, three = _folder(tmp_path / "four", 4), _folder(tmp_path / "three", 3)
    out = tmp_path / "set"
    result = CliRunner().invoke(app, ["train", "--dataset", "folder", "--width", "4", "--batch-size", "8",
                                      "--n-major", "10", "--ratio", "2", "--embed-dim", "8", "--epochs", "1",
                                      "--device", "cpu", "--grid", f"data_root={four},{three}", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "cannot share the set's Figure 1" in result.output and "4 classes" in result.output
    assert not any(out.rglob("checkpoint.pt")) and not any(out.rglob("summary.json"))
