"""`ufm train`: the tests of the command itself (its flags, output, folder and refusals)."""

import json

import torch

from ufm.executors import task_threads


def test_train_command_with_local_processes(tmp_path):
    """`ufm train --executor local`: the run trains in a worker process, logs to its folder, and ends with the
    same weights as the same run inline."""
    from _idx import tiny_idx
    from typer.testing import CliRunner

    from ufm.cli.main import app
    from ufm.deep.train import TrainConfig, train

    tiny_idx(tmp_path / "data")
    options = dict(dataset="idx", data_root=str(tmp_path / "data"), n_major=6, ratio=2.0, width=4, embed_dim=8,
                   epochs=3, batch_size=8, eval_every=3, checkpoint_every=3, lr=0.05, device="cpu")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    result = CliRunner().invoke(app, ["train", *flags, "--executor", "local", "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"]["epochs"] == 3
    assert (tmp_path / "run" / "job.log").is_file()
    threads = torch.get_num_threads()
    torch.set_num_threads(task_threads(parallel=1))  # what the single worker process used
    try:
        train(TrainConfig(**options), tmp_path / "inline")
    finally:
        torch.set_num_threads(threads)
    local = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    inline = torch.load(tmp_path / "inline" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(local[name], tensor) for name, tensor in inline.items())
