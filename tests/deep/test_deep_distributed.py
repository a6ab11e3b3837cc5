"""Data-parallel training (gloo, CPU, float64): two processes give the weights of one process on the same
global batch, with prototypes, with batch binding, and after a resume."""

import pytest
import torch

from ufm.deep.distributed import Dist, rank_positions
from ufm.deep.train import load_checkpoint, resumed_config, train, train_distributed
from ufm.deep.config import TrainConfig


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from ufm.deep.synthetic import write_synthetic_cifar10

    return write_synthetic_cifar10(tmp_path_factory.mktemp("cifar"), 12, 3)


def config(root, **overrides):
    # 7 images in the last batch of each epoch: an uneven split over two ranks
    values = dict(dataset="cifar10", data_root=str(root), n_major=12, ratio=4.0, width=4, embed_dim=16, epochs=2,
                  batch_size=16, eval_every=2, checkpoint_every=1, device="cpu", dtype="float64", n_w=20.0,
                  augment="crop-flip")
    return TrainConfig(**{**values, **overrides})


def assert_same_weights(a, b):
    a, b = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert a["epoch"] == b["epoch"]
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=1e-9, atol=1e-11, msg=name)


def test_rank_positions_split_each_batch_once():
    for world in (1, 2, 3):
        shares = [rank_positions(7, Dist(r, world, 0)) for r in range(world)]
        assert sorted(torch.cat(shares).tolist()) == list(range(14))
        assert all(((s[len(s) // 2 :] - s[: len(s) // 2]) == 7).all() for s in shares)  # both views of an image


def test_two_processes_match_one_with_prototypes_binding_and_a_resume(image_folder, tmp_path):
    import logging

    import torch.distributed.launcher.api  # noqa: F401  (torch's modules set their loggers' levels on import)

    cfg = config(image_folder, batching="binding", epochs=3)
    train(cfg, tmp_path / "one")
    caller = logging.getLogger("torch.distributed.elastic.agent.server.api")
    caller.setLevel(logging.DEBUG)  # a caller's own logging setting
    assert train_distributed(cfg, tmp_path / "two", nproc=2, stop_after=2) == {"stopped_at": 2}
    assert caller.level == logging.DEBUG  # the launcher quiets torch's elastic loggers only while it runs
    summary = train_distributed(resumed_config(cfg, {}), tmp_path / "two", nproc=2, resume=True)
    assert summary["processes"] == 2 and summary["epochs"] == 3
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    # the loss and G_M logged by rank 0 are the single process's
    one, two = (load_checkpoint(tmp_path / f / "checkpoint.pt")["history"] for f in ("one", "two"))
    assert [h["loss"] for h in two] == pytest.approx([h["loss"] for h in one], rel=1e-10)
    assert two[-1]["distance"] == pytest.approx(one[-1]["distance"], rel=1e-8)
