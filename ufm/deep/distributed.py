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
import multiprocessing
import os
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ufm import interrupt
from ufm.devices import resolve_device
from ufm.errors import FieldError

__all__ = ["Dist", "from_env", "env_rank", "env_world", "check", "barrier", "close", "exit_worker", "wrap",
           "GlobalBatchNorm2d", "convert_batchnorm", "gather_rows", "rank_positions", "launch", "check_nproc"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the group."""

    rank: int
    world: int
    local_rank: int
    cpu_group: Any = None  # a gloo group for host-side agreement (None: the default group is gloo already)

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
    cpu = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else None
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), cpu)


def check(group: Dist | None) -> None:
    """:func:`ufm.interrupt.check` agreed by every rank: raises :class:`ufm.interrupt.Interrupted` on all of them at
    the same step when Ctrl-C (SIGTERM from the launcher) reached any (a one-number all-reduce on the host), so that
    no rank is left waiting in a collective of a step the others never take."""
    if group is None:
        interrupt.check()
        return
    flag = torch.tensor([int(interrupt.requested())])
    dist.all_reduce(flag, group=group.cpu_group)
    if flag.item():
        raise interrupt.Interrupted()


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


def check_nproc(cfg: Any, nproc: int) -> None:
    """Refuse ``nproc`` data-parallel processes that ``cfg`` (a TrainConfig) cannot use: fewer than 1, more than the batch has images,
    more than the GPUs (CUDA) or the CPU cores this process may use (CPU)."""
    if nproc < 1:
        raise FieldError(f"{{nproc}} must be >= 1, got {nproc}")
    if nproc == 1:
        return
    if cfg.batch_size < nproc:
        raise FieldError(f"{{batch_size}} = {cfg.batch_size} is smaller than {{nproc}} = {nproc}: every process needs "
                         "images; raise the batch size or use fewer processes")
    if resolve_device(cfg.device).type == "cuda":
        if torch.cuda.device_count() < nproc:
            raise FieldError(f"{{nproc}} = {nproc} needs {nproc} GPUs; this machine has {torch.cuda.device_count()}")
    else:
        from ufm.threads import usable_cores

        cores = usable_cores()
        if nproc > cores:
            raise FieldError(f"{{nproc}} = {nproc} is more than the {cores} CPU cores this process may use: the "
                             f"processes would share cores, each one slower; use {{nproc}} <= {cores}")


_USER_ERRORS = (ValueError, FileNotFoundError)
_ERROR = "__ufm_worker_error__"


def _entry(fn: Callable, args: tuple) -> Any:
    """A worker: ``fn(*args)``; a user error (bad input, found alike by every rank) or an interrupt comes back to
    :func:`launch` as a value, so that the launcher neither prints each worker's traceback nor reports a crash.  The
    worker ignores SIGINT (the launcher stops it with SIGTERM, which lands at its next step); any error after that
    (e.g. a peer that stopped first) counts as the interrupt."""
    interrupt.as_worker()
    try:
        return fn(*args)
    except _USER_ERRORS as err:
        return {_ERROR: type(err).__name__, "message": str(err)}
    except KeyboardInterrupt:
        return _interrupted()
    except Exception:
        if interrupt.requested():
            return _interrupted()
        raise


def _interrupted() -> dict:
    """The value of an interrupted worker; once the launcher has it, the worker ends without interpreter finalization
    (seconds with torch loaded), so that it stops well within :data:`STOP_WORKERS_S`, and it ends all the same if no
    launcher collects it (one that was killed: the worker waits for it to read the value)."""
    import atexit

    atexit.register(os._exit, 0)
    timer = threading.Timer(2 * STOP_WORKERS_S, os._exit, (0,))
    timer.daemon = True
    timer.start()
    return {_ERROR: "KeyboardInterrupt", "message": ""}


_LAUNCH_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing")


def _launch_loggers() -> list[logging.Logger]:
    """The loggers of torch's launcher (its modules set their own levels, so each is listed)."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith(_LAUNCH_LOGGERS)]
    return [logging.getLogger(n) for n in dict.fromkeys(names + list(_LAUNCH_LOGGERS))]


@contextmanager
def _quiet_elastic() -> Iterator[None]:
    """The launcher's loggers at ERROR for the block, restored afterwards: the caller's logging is left as it was."""
    loggers = _launch_loggers()
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


STOP_WORKERS_S = 3.0  # workers asked to stop (SIGTERM) are killed after this


def launch(nproc: int, fn: Callable, *args: Any) -> Any:
    """Run ``fn(*args)`` in ``nproc`` processes on this node through torchrun's launcher (elastic agent, a free
    port on localhost); returns rank 0's result.  ``fn`` must be importable (a module-level function).

    The agent runs in a thread and its workers ignore SIGINT, so a Ctrl-C (to this process or the whole process
    group) is this process's alone: it asks the workers to stop (SIGTERM, landing at their next step, the same one
    on every rank), kills those left after :data:`STOP_WORKERS_S` and raises :class:`ufm.interrupt.Interrupted`."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from ufm.threads import LAUNCHED

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", run_id=f"ufm-{os.getpid()}", max_restarts=0,
                          monitor_interval=0.2)
    outcome: dict[str, Any] = {}

    def agent() -> None:
        try:
            # the ranks inherit this environment: the marker says OMP_NUM_THREADS (if set) is the user's own
            os.environ[LAUNCHED] = "1"
            outcome["results"] = elastic_launch(config, _entry)(fn, args)
        except BaseException as err:  # noqa: BLE001 - handed to the launching thread
            outcome["error"] = err
        finally:
            os.environ.pop(LAUNCHED, None)

    before = set(multiprocessing.active_children())
    thread = threading.Thread(target=agent, name="ufm-launch", daemon=True)
    with _quiet_elastic(), interrupt.safe_points():
        with interrupt.ignoring():  # the workers are started now: they ignore SIGINT from birth
            thread.start()
            while thread.is_alive() and len(set(multiprocessing.active_children()) - before) < nproc:
                time.sleep(0.01)
        try:
            while thread.is_alive():
                thread.join(0.1)
                interrupt.check()
        except KeyboardInterrupt:
            _stop(set(multiprocessing.active_children()) - before, thread)
            raise
    if "error" in outcome:
        raise outcome["error"]
    results = outcome["results"]
    errors = [r for r in results.values() if isinstance(r, dict) and _ERROR in r]
    if any(e[_ERROR] == "KeyboardInterrupt" for e in errors):
        raise interrupt.Interrupted()
    if errors:
        raise {"FileNotFoundError": FileNotFoundError}.get(errors[0][_ERROR], ValueError)(errors[0]["message"])
    return results[0]


def _stop(workers: set, agent: threading.Thread) -> None:
    """Ask the workers to stop (SIGTERM), kill those left after :data:`STOP_WORKERS_S`, let the agent see them end
    (its reports of workers stopped on purpose are not shown)."""
    for logger in _launch_loggers():
        logger.setLevel(logging.CRITICAL + 1)
    for process in workers:
        with suppress(OSError, ValueError):
            process.terminate()
    deadline = time.monotonic() + STOP_WORKERS_S
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in workers:
        if process.is_alive():
            with suppress(OSError, ValueError):
                process.kill()
            process.join(1.0)
    agent.join(2.0)
