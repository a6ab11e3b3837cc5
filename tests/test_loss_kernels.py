"""ufm._loss_kernels: the cheaper of two exact paths is chosen by size, and every path gives the same loss and
gradient (the positives' masked row-sum or class sums; full logits or row blocks)."""

import pytest
import torch

import ufm._loss_kernels as kernels
import ufm.losses as losses
from ufm.geometry import etf_gram


def test_the_paths_are_chosen_by_size():
    assert kernels.masked_positives(8, 8) and not kernels.masked_positives(9, 8)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    rows = int((kernels.FULL_BYTES / 8) ** 0.5)  # one float64 R x R tensor at the CPU limit
    assert not kernels.chunked(1, rows, 8, cpu) and kernels.chunked(2, rows, 8, cpu)
    assert not kernels.chunked(2, rows, 8, cuda)  # a caching allocator: row blocks only to bound memory


def _loss_and_grad(h, y, w):
    h = h.clone().requires_grad_(True)
    loss = losses.scl_loss(h, y, w, n_w=3.0, tau=0.5).sum()
    loss.backward()
    return loss.detach(), h.grad


@pytest.mark.parametrize("masked, chunked", [(True, False), (False, True), (True, True)])
def test_every_path_gives_the_same_loss_and_gradient(monkeypatch, masked, chunked):
    gen = torch.Generator().manual_seed(0)
    h = torch.nn.functional.normalize(torch.randn(2, 10, 6, generator=gen, dtype=torch.float64), dim=-1)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 0])
    g = etf_gram(4).double()
    w = torch.linalg.cholesky(g + 1e-12 * torch.eye(4, dtype=torch.float64))
    w = torch.nn.functional.pad(w, (0, 2))  # 4 unit prototypes in d = 6 with Gram G_*
    reference = _loss_and_grad(h, y, w)  # R = 14 > d = 6: class sums, full logits
    monkeypatch.setattr(kernels, "masked_positives", lambda rows, d: masked)
    monkeypatch.setattr(losses, "chunked", lambda *args: chunked)
    loss, grad = _loss_and_grad(h, y, w)
    torch.testing.assert_close(loss, reference[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, reference[1], rtol=1e-10, atol=1e-12)
