import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ufm.cli.main import app
from ufm.deep.model import ResNet18, check_head_reaches
from ufm.deep.train import TrainConfig, preset, train
from ufm.geometry import etf_gram


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for c in range(3):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(60 + 60 * c, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def tiny(root, **overrides):
    values = dict(dataset="folder", data_root=str(root), n_major=10, ratio=5, width=4, embed_dim=8, epochs=2,
                  batch_size=8, eval_every=1, checkpoint_every=1, device="cpu", n_w=20.0)
    return TrainConfig(**{**values, **overrides})


def test_two_epoch_run_writes_a_complete_folder(image_folder, tmp_path):
    summary = train(tiny(image_folder), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert names == {"config.json", "data.npz", "metrics.jsonl", "checkpoint.pt", "arrays.npz", "summary.json"}
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    for key in ("distance", "distance_centered", "nc1", "ncc_accuracy", "prototype_accuracy", "images_per_s"):
        assert key in history[-1]
    assert summary["counts"] == [10, 10, 2] and 0 <= summary["linear_probe_accuracy"] <= 1


def test_supcon_augmentation_and_indices_are_recorded(image_folder, tmp_path):
    train(tiny(image_folder, augment="supcon", epochs=1), tmp_path / "run")
    data = np.load(tmp_path / "run" / "data.npz")
    assert data["counts"].tolist() == [10, 10, 2] and len(data["train_index"]) == 22


def test_resume_equals_an_uninterrupted_run(image_folder, tmp_path):
    cfg = tiny(image_folder, batching="binding")
    train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "resumed", stop_after=1)
    train(cfg, tmp_path / "resumed", resume=True)
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_bad_paths_and_configs(image_folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder"):
        train(tiny(tmp_path / "missing"), tmp_path / "r")
    with pytest.raises(ValueError, match="non-negative"):
        train(tiny(image_folder, head="relu"), tmp_path / "r")
    with pytest.raises(ValueError, match="loss='mse'"):
        tiny(image_folder, loss="mse")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny(image_folder), tmp_path / "never", resume=True)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("paper-fig9")
    check_head_reaches(torch.eye(3), "relu")
    with pytest.raises(ValueError, match="negative cosines"):
        check_head_reaches(etf_gram(3), "relu")


def test_model_shapes():
    x = torch.randn(2, 3, 32, 32)
    assert ResNet18(width=4, head="linear", embed_dim=6)(x).shape == (2, 6)
    relu = ResNet18(width=4, head="relu")(x)
    assert relu.shape == (2, 32) and (relu >= 0).all()
    torch.testing.assert_close(relu.norm(dim=1), torch.ones(2))


def test_train_cli_preset_and_figures(image_folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--preset", "cpu-small", "--data-root", str(image_folder), "--epochs", "1",
                                 "--n-major", "10", "--test-per-class", "4", "--batch-size", "8", "--device", "cpu",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert set(summaries) == {"scl-nw0", "scl-nw100"}
    assert (tmp_path / "deep_fig1_heatmaps.png").is_file()
    result = runner.invoke(app, ["deep-figures", str(tmp_path / "scl-nw0"), str(tmp_path / "scl-nw100"),
                                 "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "deep_fig1_distance.png").is_file()
    result = runner.invoke(app, ["train", "--data-root", str(tmp_path / "none"), "--dataset", "folder",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not found" in result.output
