"""PrototypeSupConLoss(gather=True) under torch.distributed (gloo, 2 and 3 ranks, slices of unequal size): every
parameter gradient DDP ends with equals the single-process gradient on the global batch, in float64."""

import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from ufm.geometry import etf_gram, prototypes_from_gram
from ufm.nn import PrototypeSupConLoss

CASES = [(mode, views) for mode in ("all", "one") for views in (1, 2)]  # views 1: the [n, d] convention


def _data(n: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 6, generator=g, dtype=torch.float64)   # two augmented views of each sample
    y = torch.tensor([i % 3 for i in range(n)])
    w = prototypes_from_gram(etf_gram(3).double(), 4)
    weight = torch.randn(4, 6, generator=g, dtype=torch.float64)
    return x, y, w, weight


def _loss(model, x, y, w, mode, views, gather):
    criterion = PrototypeSupConLoss(w, n_w=5.0, temperature=0.5, contrast_mode=mode, gather=gather)
    feats = F.normalize(model(x[:, :views]), dim=-1)  # [b, views, d]
    return criterion(feats[:, 0] if views == 1 else feats, y)


def _rank(rank: int, world: int, sizes: list, init: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        x, y, w, weight = _data(sum(sizes))
        start = sum(sizes[:rank])
        local = slice(start, start + sizes[rank])
        results = {}
        for mode, views in CASES:
            model = torch.nn.Linear(6, 4, bias=False).double()
            with torch.no_grad():
                model.weight.copy_(weight)
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            loss = _loss(ddp, x[local], y[local], w, mode, views, gather=True)
            loss.backward()
            results[(mode, views)] = (loss.item(), model.weight.grad.clone())
        torch.save(results, f"{out}/rank{rank}.pt")
        torch.distributed.barrier()  # every rank leaves together
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("sizes", [[3, 5], [2, 4, 3]])
def test_ddp_gradients_equal_the_single_process_gradient_of_the_global_batch(sizes, tmp_path):
    x, y, w, weight = _data(sum(sizes))
    expected = {}
    for mode, views in CASES:
        model = torch.nn.Linear(6, 4, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(weight)
        loss = _loss(model, x, y, w, mode, views, gather=True)  # no process group: the plain loss
        loss.backward()
        expected[(mode, views)] = (loss.item(), model.weight.grad.clone())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_rank, args=(len(sizes), sizes, f"file://{tmp_path}/init", str(tmp_path)), nprocs=len(sizes), join=True)
    for rank in range(len(sizes)):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for case, (value, grad) in expected.items():
            assert got[case][0] == pytest.approx(value, rel=1e-12), (rank, case)
            assert torch.allclose(got[case][1], grad, rtol=1e-10, atol=1e-13), (rank, case, got[case][1] - grad)
