"""TensorBoard events mirror metrics.jsonl when TensorBoard is installed (the dev extra installs it); without it
training runs unchanged and writes no events."""

import json

import pytest
import torch

from ufm.deep import tensorboard
from ufm.deep.train import TrainConfig, load_checkpoint, train


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from ufm.deep.synthetic import write_synthetic_cifar10

    return write_synthetic_cifar10(tmp_path_factory.mktemp("cifar"), 10, 3)


def config(root, **overrides):
    values = dict(dataset="cifar10", data_root=str(root), n_major=10, ratio=5.0, width=4, embed_dim=16, epochs=3,
                  batch_size=16, eval_every=2, checkpoint_every=1, device="cpu", n_w=10.0)
    return TrainConfig(**{**values, **overrides})


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_events_mirror_the_metrics(image_folder, tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is the optional extra .[tensorboard] (in .[dev])")
    train(config(image_folder), tmp_path / "run")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    acc = _events(tmp_path / "run")
    for name in ("loss", "lr", "grad_norm"):
        assert [e.step for e in acc.Scalars(name)] == [1, 2, 3]
        assert [e.value for e in acc.Scalars(name)] == pytest.approx([h[name] for h in history], rel=1e-6)
    for name in ("distance", "nc1", "nc1_ref", "cdnv", "nc2", "nc3", "nc4", "ncc_accuracy", "prototype_accuracy"):
        assert [e.step for e in acc.Scalars(name)] == [2, 3]  # evaluated epochs only
        assert acc.Scalars(name)[-1].value == pytest.approx(history[-1][name], rel=1e-6)
    assert [e.step for e in acc.Images("G_M")] == [2, 3]


def test_a_resume_purges_the_events_after_its_checkpoint(image_folder, tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is the optional extra .[tensorboard] (in .[dev])")
    cfg = config(image_folder, epochs=4)
    train(cfg, tmp_path / "run", stop_after=2)
    train(cfg, tmp_path / "run", resume=True)
    assert [e.step for e in _events(tmp_path / "run").Scalars("loss")] == [1, 2, 3, 4]


def test_without_tensorboard_training_is_unchanged(image_folder, tmp_path, monkeypatch):
    train(config(image_folder), tmp_path / "with")
    monkeypatch.setattr(tensorboard, "available", lambda: False)
    train(config(image_folder), tmp_path / "without")
    assert not (tmp_path / "without" / "tensorboard").exists()
    a, b = (load_checkpoint(tmp_path / f / "checkpoint.pt") for f in ("with", "without"))
    for name, value in a["model"].items():
        assert torch.equal(b["model"][name], value), name
