import json
import time

import numpy as np
import pytest
import torch

from _images import tiny, write_image_folder
from ufm.deep.model import ResNet18, check_head_reaches
from ufm.deep.train import (TrainConfig, _epoch_plan, _first_of_each_class, anchor_count, load_checkpoint, preset,
                            resumed_config, train)
from ufm.deep.augment import AUGMENT
from ufm.deep.tensorboard import available as tensorboard_available
from ufm.geometry import etf_gram


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"))


def test_two_epoch_run_writes_a_complete_folder(image_folder, tmp_path):
    summary = train(tiny(image_folder), tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert names == {"config.json", "provenance.json", "data.npz", "metrics.jsonl", "grams.npz", "checkpoint.pt",
                     "arrays.npz", "summary.json"} | ({"tensorboard"} if tensorboard_available() else set())
    # kind.json, the folder marker, is the engine's (ufm train writes it: tests/test_folders.py)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    for key in ("distance", "distance_centered", "nc1", "train_ncc_accuracy", "ncc_accuracy", "prototype_accuracy",
                "images_per_s", "grad_norm", "lr", "nc1_ref", "cdnv", "nc2", "nc3", "nc4"):
        assert key in history[-1] and key in history[0]  # every evaluation (eval_every 1)
    # the field's NC metrics (ufm.nc_metrics, prototypes as classifier) are the summary's too, and bounded
    assert {k: summary["final"][k] for k in ("nc1_ref", "cdnv", "nc2", "nc3", "nc4")} == \
        {k: history[-1][k] for k in ("nc1_ref", "cdnv", "nc2", "nc3", "nc4")}
    assert 0 <= history[-1]["nc4"] <= 1 and history[-1]["nc2"] >= 0 and history[-1]["cdnv"] > 0
    assert history[-1]["grad_norm"] > 0
    correct = summary["linear_probe_accuracy"] * 12  # a fraction of the 12 test images
    assert summary["counts"] == [10, 10, 2] and abs(correct - round(correct)) < 1e-5
    # G_M at every evaluation; the last one is the final G_M, and its distance is the one logged
    grams = np.load(tmp_path / "run" / "grams.npz")
    assert grams["epoch"].tolist() == [1, 2] and grams["g_m"].shape == (2, 3, 3)
    np.testing.assert_allclose(np.diagonal(grams["g_m"], axis1=1, axis2=2), 1.0, atol=1e-12)
    final = np.load(tmp_path / "run" / "arrays.npz")
    np.testing.assert_array_equal(grams["g_m"][-1], final["g_m"])
    unit = [g / np.linalg.norm(g) for g in (final["g_m"], final["g_star"])]
    distance = np.linalg.norm(unit[0] - unit[1])
    assert abs(distance - history[-1]["distance"]) < 1e-9
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert len(record) == 1 and record[0]["torch"] == torch.__version__ and record[0]["from_epoch"] == 0
    # what decides the CPU's floating-point paths, so runs from two machines can be told apart
    assert record[0]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record[0]["threads"] == torch.get_num_threads() and record[0]["numpy"] == np.__version__
    assert record[0]["cpu"] and record[0]["pillow"]


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
    with pytest.raises(ValueError, match="loss 'mse' is not one of"):
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


def test_resume_extends_the_epochs_and_refuses_other_changes(image_folder, tmp_path):
    cfg = tiny(image_folder, epochs=2)
    train(cfg, tmp_path / "run")
    longer = resumed_config(cfg, {"epochs": 3})
    summary = train(longer, tmp_path / "run", resume=True)
    assert summary["epochs"] == 3 and load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 3
    starts = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert [s["from_epoch"] for s in starts] == [0, 2]
    with pytest.raises(ValueError, match="cannot change width"):
        resumed_config(cfg, {"width": 8, "epochs": 5})
    with pytest.raises(ValueError, match="cannot change n_w"):
        train(tiny(image_folder, epochs=4, n_w=5.0), tmp_path / "run", resume=True)


def test_a_folder_holding_a_run_is_never_started_over(image_folder, tmp_path):
    train(tiny(image_folder, epochs=1), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(image_folder, epochs=1), tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        train(tiny(image_folder, epochs=1), tmp_path / "file" / "run")


def test_checkpoints_load_on_the_cpu_and_torn_ones_are_refused(image_folder, tmp_path):
    train(tiny(image_folder, epochs=1, batching="binding"), tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.pt"
    state = load_checkpoint(path)
    # the generator state and the bound examples must stay CPU tensors, whatever device trains
    assert state["generator"].device.type == "cpu" and state["generator"].dtype == torch.uint8
    assert state["bound"].device.type == "cpu"
    torch.Generator().set_state(state["generator"])
    blob = path.read_bytes()
    for name, data in (("truncated", blob[: len(blob) // 2]), ("empty", b""), ("random", bytes(range(256)) * 8)):
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(data)
        with pytest.raises(ValueError, match=f"checkpoint .*{name}.pt (is empty|is not a torch checkpoint|cannot be read)"):
            load_checkpoint(bad)
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt lacks"):
        load_checkpoint(tmp_path / "other.pt")


def test_loss_reductions_divide_by_the_anchors():
    mean = TrainConfig(loss="scl", n_w=100.0, reduction="mean")
    assert anchor_count(mean, 256, 10) == 256 + 1000
    assert anchor_count(TrainConfig(loss="scl", n_w=100.0, prototype_anchors=False), 256, 10) == 256
    assert anchor_count(TrainConfig(loss="scl", n_w=100.0, reduction="2B"), 256, 10) == 256
    assert anchor_count(TrainConfig(loss="class-averaging", n_w=100.0), 256, 10) == 256


def test_epoch_plan_covers_every_sample_once_and_binds_the_first_examples():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2, 2, 0])
    assert _first_of_each_class(labels, 3).tolist() == [1, 2, 0]
    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(batch_size=4, batching="shuffle", augment="crop-flip")
    rows, offsets, draws = _epoch_plan(cfg, labels, 3, None, gen, AUGMENT["crop-flip"])
    assert sorted(rows.tolist()) == list(range(11)) and offsets == [0, 4, 8, 11]
    assert draws["offsets"].shape == (22, 2) and draws["mirrored"].shape == (22,)
    bound = torch.tensor([1, 2, 0])
    cfg = TrainConfig(batch_size=4, batching="binding", augment="none")
    rows, offsets, draws = _epoch_plan(cfg, labels, 3, bound, gen, AUGMENT["none"])
    batches = [rows[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert all(b[-3:] == [1, 2, 0] for b in batches) and draws == {}
    assert sorted(i for b in batches for i in b[:-3]) == sorted(set(range(11)) - {0, 1, 2})


def test_a_diverging_run_stops_with_the_epoch(image_folder, tmp_path):
    with pytest.raises(ValueError, match="non-finite in epoch 1"):
        train(tiny(image_folder, lr=1e30, epochs=2), tmp_path / "run")


def test_compiled_model_trains_on_the_cpu(image_folder, tmp_path):
    """torch.compile (inductor, system C compiler) builds and trains, so a compile error shows before a GPU run.

    In a process of its own (after other tests in the same process the compiled graph's oneDNN backward was seen to
    spin in an OpenMP barrier); should it hang, the child prints every thread's stack and exits (faulthandler), so
    the failure says where."""
    import os
    import subprocess
    import sys

    # batches of 11 from 22 images: one shape, one compiled graph
    cfg = tiny(image_folder, epochs=1, compile=True, width=2, batch_size=11)
    code = ("import faulthandler, json, sys; faulthandler.dump_traceback_later(480, exit=True); "
            "from ufm.deep.train import TrainConfig, train; "
            "s = train(TrainConfig(**json.loads(sys.argv[1])), sys.argv[2]); "
            "print(json.dumps({'epochs': s['epochs'], 'loss': s['final']['loss']}))")
    # inductor compiles in this child (no pool of compile workers): fewer processes to share the two cores
    env = {**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-6000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and np.isfinite(summary["loss"])


def test_linear_probe_separates_separable_embeddings_and_not_random_labels():
    from ufm.deep.evaluate import linear_probe

    gen = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16, generator=gen), dim=-1)
    y = torch.arange(4).repeat(50)
    z = torch.nn.functional.normalize(centres[y] + 0.05 * torch.randn(200, 16, generator=gen), dim=-1)
    assert linear_probe(z[:120], y[:120], z[120:], y[120:], 4) == 1.0
    noise = torch.randn(400, 16, generator=gen)
    random_labels = torch.randint(0, 4, (400,), generator=gen)
    assert linear_probe(noise[:200], random_labels[:200], noise[200:], random_labels[200:], 4) < 0.45


def test_per_class_accuracies_by_hand():
    from ufm.deep.evaluate import class_accuracies, per_class_accuracy

    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 0])
    assert per_class_accuracy(predicted, labels, 4)[:3] == [0.5, 2 / 3, 0.0]
    assert per_class_accuracy(predicted, labels, 4)[3] != per_class_accuracy(predicted, labels, 4)[3]  # NaN: no samples
    # embeddings at the prototypes: nearest prototype and nearest centre both exact; the probe's predictions are passed
    w = torch.eye(3)
    z = w[labels]
    acc = class_accuracies(z, labels, z, labels, w, predicted)
    assert acc["ncc"] == acc["prototype"] == [1.0, 1.0, 1.0] and acc["probe"] == [0.5, 2 / 3, 0.0]


def _ctrl_c_at(monkeypatch, where: str) -> None:
    """Make a SIGINT arrive at an exact point of a run: while the data loads (before the first step), inside the 5th
    step, inside the evaluation of epoch 2, or while the checkpoint of epoch 2 is written."""
    import os
    import signal

    import ufm.deep.train as trainer

    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)

    calls = {"n": 0}

    def wrap(fn, when):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if when(calls["n"], *args):
                ctrl_c()
            return fn(*args, **kwargs)
        return wrapped

    if where == "before the first step":
        monkeypatch.setattr(trainer, "load_data", wrap(trainer.load_data, lambda n, *a: True))
    elif where == "inside a step":
        monkeypatch.setattr(trainer, "batch_loss", wrap(trainer.batch_loss, lambda n, *a: n == 5))
    elif where == "during evaluation":  # embedded: the training images twice, then the test images, per epoch
        import ufm.deep.evaluate as evaluation

        monkeypatch.setattr(evaluation, "embedded", wrap(evaluation.embedded, lambda n, *a: n == 4))
    else:  # during a checkpoint write: torch.save of epoch 0, 1, then 2
        monkeypatch.setattr(torch, "save", wrap(torch.save, lambda n, *a: n == 3))


@pytest.mark.parametrize("where", ["before the first step", "inside a step", "during evaluation",
                                   "during a checkpoint write"])
def test_ctrl_c_lands_at_any_point_and_the_run_resumes(image_folder, tmp_path, monkeypatch, where):
    """SIGINT inside a run raises ufm.interrupt.Interrupted at the next safe point, saying what the folder keeps; the
    folder is whole (no temporary file, the checkpoint loads) and the resumed run ends like an uninterrupted one."""
    from ufm.interrupt import Interrupted

    cfg = tiny(image_folder, epochs=4)
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _ctrl_c_at(patch, where)
        start = time.monotonic()
        with pytest.raises(Interrupted) as caught:
            train(cfg, run)
    assert time.monotonic() - start < 30
    line = caught.value.line()
    if where == "before the first step":
        assert not run.exists() and line == f"interrupted: nothing was written to {run}; re-run the same command to " \
                                            "start it"
        train(cfg, run)
        return
    epoch = load_checkpoint(run / "checkpoint.pt")["epoch"]
    assert epoch == {"inside a step": 1, "during evaluation": 1, "during a checkpoint write": 2}[where]
    assert line == (f"interrupted: {run} keeps its checkpoint of epoch {epoch}; continue with "
                    f"`ufm train --resume {run}`")
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")] and not (run / "summary.json").exists()
    resumed = train(cfg, run, resume=True)
    assert resumed["epochs"] == 4
    if where == "inside a step":  # the same weights as a run never interrupted
        train(cfg, tmp_path / "straight")
        a, b = (load_checkpoint(p / "checkpoint.pt")["model"] for p in (run, tmp_path / "straight"))
        assert all(torch.equal(a[k], b[k]) for k in a)
