"""Data-parallel training over several processes (torchrun / ``torch.distributed``): the only module of the
deep backend that talks to other processes.

SCL couples every sample of a batch, so a rank cannot compute its loss from its own slice.  Every rank
draws the same seeded batch-set, embeds its slice of each batch, and all-gathers the embeddings *with
their gradient* into the whole batch, in the single-process order; every rank then computes the same
full-batch loss.  The gather's backward sums the gradients of the W identical losses (W x the gradient of
one) and DDP averages over the W ranks, so the parameter gradient equals the single-process one: the loss
is not divided by W.  BatchNorm statistics are those of the global batch (:class:`GlobalBatchNorm2d`, an
all-reduce of the per-channel sums, differentiable, on gloo and NCCL alike).  Rank 0 alone writes the run
folder.

Launch: ``ufm train --nproc N`` on one node, or torchrun for several (see the README).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Dist", "from_env", "env_rank", "env_world", "barrier", "close", "exit_worker", "wrap",
           "GlobalBatchNorm2d", "convert_batchnorm", "gather_rows", "rank_positions", "launch"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_rank() -> int:
    """This process's rank as torchrun set it in the environment (RANK); 0 outside torchrun."""
    return int(os.environ.get("RANK", "0"))


def env_world() -> int:
    """The number of processes torchrun started (WORLD_SIZE); 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def from_env(device_type: str) -> Dist | None:
    """Join the process group that torchrun described in the environment (WORLD_SIZE > 1), with NCCL on CUDA and
    gloo on the CPU; None for a single process."""
    if env_world() <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier() -> None:
    dist.barrier()


def close(group: Dist | None) -> None:
    """Leave the process group (after every rank got here); nothing for a single process."""
    if group is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def exit_worker() -> None:
    """A torchrun worker after its work (rank 0 after its report): flush stdio and end the process now, exit code 0,
    without interpreter finalization, where torch's distributed objects freed late may take the process down with
    SIGABRT (gloo's threads against a finalizing interpreter, pytorch/pytorch#179291) and fail a finished run."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def wrap(model: nn.Module, device: torch.device, group: Dist | None) -> nn.Module:
    """``model`` in DistributedDataParallel for several processes (gradients averaged over ranks); as is for one."""
    if group is None:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of each rank's input is the sum of the ranks' output gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _AllGather(torch.autograd.Function):
    """``[W, ...]``: every rank's input; the gradient of rank r's input is the sum over ranks of slot r's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # gloo has no reduce-scatter: sum everything, keep this rank's slot
        return grad[dist.get_rank()]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch over all ranks (a differentiable
    all-reduce of per-channel count, sum and sum of squares); the same as BatchNorm2d in one process or in
    eval mode.  Running statistics are updated with the unbiased global variance, as BatchNorm2d does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([count, x.sum((0, 2, 3)), x.square().sum((0, 2, 3))]))
        n, c = stats[0], x.shape[1]
        mean = stats[1 : 1 + c] / n
        var = stats[1 + c :] / n - mean.square()
        with torch.no_grad():
            m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked + 1)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
            self.running_var.lerp_((var.detach() * n / (n - 1)).to(self.running_var.dtype), m)
            self.num_batches_tracked += 1
        scale = self.weight * torch.rsqrt(var + self.eps)
        return x * scale.view(1, -1, 1, 1) + (self.bias - mean * scale).view(1, -1, 1, 1)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d of ``module`` by a :class:`GlobalBatchNorm2d` with the same state."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, GlobalBatchNorm2d):
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats).to(child.weight.device, child.weight.dtype)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


def rank_positions(batch: int, group: Dist | None) -> torch.Tensor:
    """Positions, among the 2B views of a batch of B images (first views, then second views), that this rank
    embeds: the two views of its contiguous share of the images."""
    if group is None:
        return torch.arange(2 * batch)
    mine = torch.tensor_split(torch.arange(batch), group.world)[group.rank]
    return torch.cat([mine, batch + mine])


def gather_rows(z: torch.Tensor, batch: int, group: Dist | None) -> torch.Tensor:
    """The embeddings ``[2B, d]`` of the whole batch, in single-process order, from each rank's ``z: [n_r, d]``
    (its :func:`rank_positions`); differentiable (the backward sums the gradients of all ranks)."""
    if group is None:
        return z
    shares = [rank_positions(batch, Dist(r, group.world, 0)) for r in range(group.world)]
    width = max(len(s) for s in shares)
    padded = torch.cat([z, z.new_zeros(width - len(z), *z.shape[1:])])
    parts = _AllGather.apply(padded)
    rows = torch.cat([part[: len(s)] for part, s in zip(parts, shares)])
    order = torch.argsort(torch.cat(shares)).to(z.device)
    return rows.index_select(0, order)


_USER_ERRORS = (ValueError, FileNotFoundError)
_ERROR = "__ufm_worker_error__"


def _entry(fn: Callable, args: tuple) -> Any:
    """A worker: ``fn(*args)``; a user error (bad input, found alike by every rank) or Ctrl-C comes back to
    :func:`launch` as a value, so that the launcher neither prints each worker's traceback nor reports a crash."""
    try:
        return fn(*args)
    except _USER_ERRORS as err:
        return {_ERROR: type(err).__name__, "message": str(err)}
    except KeyboardInterrupt:
        return {_ERROR: "KeyboardInterrupt", "message": ""}


@contextmanager
def _quiet_elastic() -> Iterator[None]:
    """torch.distributed.elastic's loggers at ERROR for the block (its modules set their own levels, so each is set),
    restored afterwards: the caller's logging is left as it was."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")]
    loggers = [logging.getLogger(n) for n in dict.fromkeys(names + ["torch.distributed.elastic"])]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def launch(nproc: int, fn: Callable, *args: Any) -> Any:
    """Run ``fn(*args)`` in ``nproc`` processes on this node through torchrun's launcher (elastic agent, a free
    port on localhost); returns rank 0's result.  ``fn`` must be importable (a module-level function)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", run_id=f"ufm-{os.getpid()}", max_restarts=0,
                          monitor_interval=0.5)
    try:
        with _quiet_elastic():
            results = elastic_launch(config, _entry)(fn, args)
    except SignalException as err:  # Ctrl-C (SIGINT) or SIGTERM reached the launcher: the workers are stopped
        raise KeyboardInterrupt(str(err)) from None
    errors = [r for r in results.values() if isinstance(r, dict) and _ERROR in r]
    if any(e[_ERROR] == "KeyboardInterrupt" for e in errors):
        raise KeyboardInterrupt
    if errors:
        raise {"FileNotFoundError": FileNotFoundError}.get(errors[0][_ERROR], ValueError)(errors[0]["message"])
    return results[0]
