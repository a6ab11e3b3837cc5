"""Checks that need a CUDA device; they skip on machines without one and run in benchmarks/gpu_check.sh."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from ufm.deep.synthetic import write_synthetic_cifar10
from ufm.deep.train import TrainConfig, train
from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.losses import class_averaging_loss, scl_loss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (benchmarks/gpu_check.sh)")


@pytest.mark.parametrize("loss", [scl_loss, class_averaging_loss])
def test_losses_and_gradients_on_cuda_equal_the_cpu(loss):
    gen = torch.Generator().manual_seed(0)
    h = F.normalize(torch.randn(3, 40, 16, generator=gen, dtype=torch.float64), dim=-1)
    y = torch.randint(0, 5, (40,), generator=gen)
    w = prototypes_from_gram(etf_gram(5), 16, seed=0, dtype=torch.float64)
    values, grads = [], []
    for device in ("cpu", "cuda"):
        x = h.to(device).requires_grad_()
        out = loss(x, y.to(device), w.to(device), 7.0, 0.2)
        out.sum().backward()
        values.append(out.cpu())
        grads.append(x.grad.cpu())
    torch.testing.assert_close(values[1], values[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-10)


def _synchronizations(tmp_path, name: str, batch_size: int) -> int:
    cfg = TrainConfig(dataset="cifar10", data_root=str(tmp_path / "data"), n_major=64, ratio=4.0, width=4,
                      embed_dim=16, batch_size=batch_size, epochs=1, eval_every=10, device="cuda")
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(cfg, tmp_path / name)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_the_training_step_loop_never_waits_on_the_host(tmp_path):
    """The number of host-device synchronizations of an epoch does not grow with its number of steps."""
    write_synthetic_cifar10(tmp_path / "data", 64, 8)
    few = _synchronizations(tmp_path, "few", 128)  # 2 steps
    many = _synchronizations(tmp_path, "many", 16)  # 13 steps
    assert many == few, (few, many)


def test_streamed_nc_statistics_on_cuda_equal_the_one_shot_functions_on_the_cpu():
    """float32 batches on the GPU (labels on the CPU) are accumulated in float64 on the GPU."""
    from ufm.analysis import mean_gram, nc_metrics
    from ufm.nc_stream import NCAccumulator, stream_nc_metrics

    gen = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 6
    h = (torch.randn(6, 24, generator=gen)[y] + 0.3 * torch.randn(300, 24, generator=gen)).float()
    w = prototypes_from_gram(etf_gram(6), 24, seed=0, dtype=torch.float64)
    batches = lambda: [(h[s : s + 7].cuda(), y[s : s + 7]) for s in range(0, 300, 7)]  # noqa: E731
    stats = NCAccumulator(6)
    for hb, yb in batches():
        stats.update(hb, yb)
    assert stats.class_means().device.type == "cuda" and stats.class_means().dtype == torch.float64
    torch.testing.assert_close(stats.mean_gram().cpu(), mean_gram(h.double(), y, 6), rtol=1e-10, atol=1e-10)
    expected = nc_metrics(h.double(), y, 6, w)
    streamed = stream_nc_metrics(batches, 6, w.cuda())
    for key, value in expected.items():
        torch.testing.assert_close(streamed[key].cpu(), value, rtol=1e-10, atol=1e-10)
