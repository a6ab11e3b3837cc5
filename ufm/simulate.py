"""The unconstrained-features model (UFM): optimize unit embeddings directly under a batch loss.

Each run holds free embeddings H ``[N, d]`` on the unit sphere (non-negative too with ``relu``, the UFM+
of Kini et al. 2023) and minimizes the batch-set objective sum_{B in epoch} L_B(H_B) with L = SCL with
fixed prototypes, its class-averaging variant, or CE with the fixed classifier W.

Optimization is Riemannian gradient descent with a normalizing retraction: the Euclidean gradient is
projected on the tangent space of the sphere (g <- g - (g.h) h), the optimizer (Adam or SGD) takes a
step, and every row is mapped back, h <- h / ||h|| (h <- max(h, 0) / ||max(h, 0)|| with ``relu``).
One step per epoch: the whole batch-set of the epoch is one batched loss call ``[S, B, n, d]``.

Many independent runs (the product of the ``n_w``, ``tau`` and ``seeds`` lists) are stacked along a
leading dim S and optimized as one tensor program; each run draws its initialization and batches from
its own seeded generator, so a stacked run equals the same run alone.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ufm import interrupt
from ufm.errors import FieldError
from ufm._checks import check_memory
from ufm.analysis import geometry_summary, mean_gram, nc_report
from ufm.batching import Batches, bound_examples, epoch_batches
from ufm.geometry import check_gram, prototypes_from_gram
from ufm.imbalance import labels_from_counts, minority_mask
from ufm.losses import batch_loss
from ufm.eta import Estimate, Timer
from ufm.provenance import thread_record
from ufm.devices import resolve_device  # noqa: F401  (re-exported: ufm.simulate.resolve_device)
from ufm.runio import read_json, read_jsonl, read_npz, write_json, write_jsonl, write_npz
from ufm.sim_config import (DEFAULT_N_W, LOSS_OPTIONS, LOSSES, OPTIMIZERS, SCHEDULES, SimConfig,  # noqa: F401
                            SimulationDiverged)

__all__ = ["LOSSES", "SimConfig", "Problem", "SimResult", "SimulationDiverged", "batchset_loss", "build_problem", "simulate",
           "memory_estimate", "check_simulation_size", "num_samples"]

@dataclass(frozen=True)
class Problem:
    """The data of an experiment: class counts ``[k]``, labels ``[N]``, G_* ``[k, k]``, W ``[k, d]``."""

    counts: torch.Tensor
    labels: torch.Tensor
    g_star: torch.Tensor
    prototypes: torch.Tensor
    minority: torch.Tensor


def build_problem(cfg: SimConfig) -> Problem:
    """Counts from the profile, G_* from the geometry (or file), W realizing G_* in R^d (seeded rotation); refuses
    a setting no epoch can run (single-sample classes without copies, batches larger than N)."""
    counts = cfg.class_counts()
    g = check_gram(cfg.g_star(counts), cfg.d)
    lonely = torch.nonzero(counts < 2).flatten().tolist()
    if lonely and cfg.loss in ("scl", "class-averaging") and min(cfg.n_w) == 0:
        raise FieldError(
            f"classes {lonely} have a single sample: with {{n_w}} = 0 they never have a positive pair under SCL; "
            "use at least 2 samples per class (raise {n_major} or lower the {ratio}) or {n_w} > 0"
        )
    if cfg.batching != "full" and cfg.batch_size > int(counts.sum()):
        raise FieldError(f"{{batch_size={cfg.batch_size}}} exceeds the N = {int(counts.sum())} samples of the class "
                         f"counts; use {{batch_size}} <= {int(counts.sum())}, or full batching")
    # With ReLU features the prototypes must be reachable: non-negative whenever G_* is (or a clear error when no
    # non-negative factorization exists); a G_* with negative cosines keeps signed prototypes (simulate warns).
    if cfg.relu and not bool((g < -1e-12).any()):
        from ufm.solver.nonneg import nonnegative_prototypes

        w = nonnegative_prototypes(g, cfg.d).to(g.dtype)
    else:
        w = prototypes_from_gram(g, cfg.d, seed=0)
    return Problem(counts, labels_from_counts(counts), g, w, minority_mask(counts))


@dataclass
class SimResult:
    """What a simulation produced; :meth:`save` / :meth:`load` a run folder."""

    config: SimConfig
    counts: np.ndarray  # [k]
    labels: np.ndarray  # [N]
    g_star: np.ndarray  # [k, k]
    prototypes: np.ndarray  # [k, d]
    embeddings: np.ndarray  # [S, N, d]
    history: list[dict]  # one entry per logged epoch, per-run lists
    epochs_run: int
    elapsed_s: float
    device: str
    warnings: list[str] = field(default_factory=list)
    logged_g_m: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (epoch, [S, k, k]) with keep_grams only
    threads: dict = field(default_factory=dict)  # CPU threads and what chose them (ufm.provenance.thread_record)

    @property
    def g_m(self) -> np.ndarray:
        """``[S, k, k]`` G_M of the final embeddings."""
        h = torch.from_numpy(self.embeddings)
        return mean_gram(h, torch.from_numpy(self.labels), len(self.counts)).numpy()

    def summary(self) -> dict:
        """Final metrics for each run (with :func:`ufm.analysis.nc_report` of its final embeddings), plus the run's
        settings."""
        last = self.history[-1]
        runs = []
        h, y, w = torch.from_numpy(self.embeddings), torch.from_numpy(self.labels), torch.from_numpy(self.prototypes)
        for i, run in enumerate(self.config.runs):
            row = dict(run)
            row.update({key: values[i] for key, values in last.items() if key != "epoch"})
            row.update(nc_report(h[i], y, len(self.counts), w))  # the field's NC metrics, prototypes as classifier
            runs.append(row)
        return {
            "epochs_run": self.epochs_run,
            "elapsed_s": self.elapsed_s,
            "device": self.device,
            **self.threads,
            "counts": self.counts.tolist(),
            "warnings": self.warnings,
            "runs": runs,
        }

    def save(self, folder: str | Path, finish: bool = True) -> Path:
        """Write config.json, arrays.npz, metrics.jsonl and (``finish``) summary.json, last: the run is finished when
        it exists (a caller adding files of its own writes them first, then calls :meth:`finish`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", self.config.to_dict())
        write_npz(
            folder / "arrays.npz",
            counts=self.counts,
            labels=self.labels,
            g_star=self.g_star,
            prototypes=self.prototypes,
            embeddings=self.embeddings,
            g_m=self.g_m,
        )
        write_jsonl(folder / "metrics.jsonl", self.history)
        if finish:
            self.finish(folder)
        return folder

    def finish(self, folder: str | Path) -> None:
        """Write summary.json, the file that marks the run finished."""
        write_json(Path(folder) / "summary.json", self.summary())

    @classmethod
    def load(cls, folder: str | Path) -> "SimResult":
        folder = Path(folder)
        if not (folder / "summary.json").is_file():
            raise FileNotFoundError(f"{folder} is not a simulation run folder (no summary.json); run `ufm simulate --out {folder}`")
        arrays = read_npz(folder / "arrays.npz")
        summary = read_json(folder / "summary.json")
        return cls(
            config=SimConfig.from_dict(read_json(folder / "config.json")),
            counts=arrays["counts"],
            labels=arrays["labels"],
            g_star=arrays["g_star"],
            prototypes=arrays["prototypes"],
            embeddings=arrays["embeddings"],
            history=read_jsonl(folder / "metrics.jsonl"),
            epochs_run=summary["epochs_run"],
            elapsed_s=summary["elapsed_s"],
            device=summary["device"],
            warnings=summary["warnings"],
            threads={k: summary[k] for k in ("threads", "threads_source") if k in summary},
        )


def _stacked_batches(cfg: SimConfig, labels: torch.Tensor, gens: list[torch.Generator], bound: list) -> Batches:
    """``index, mask: [S, B, n]``: each run's batch-set for this epoch from its own generator."""
    per_run = [
        epoch_batches(labels, cfg.batch_size, cfg.batching, g, len(bound[0]) if bound[0] is not None else None, b)
        for g, b in zip(gens, bound)
    ]
    return Batches(torch.stack([b.index for b in per_run]), torch.stack([b.mask for b in per_run]))


def batchset_loss(
    h: torch.Tensor,
    labels: torch.Tensor,
    batches: Batches,
    prototypes: torch.Tensor,
    n_w: torch.Tensor,
    tau: torch.Tensor,
    loss: str = "scl",
    prototype_anchors: bool = True,
    validate: bool = False,
) -> torch.Tensor:
    """sum_{B in batch-set} L_B(H_B) for every stacked run, in one batched call: ``[S]``.

    ``h: [S, N, d]``, ``labels: [N]``, ``batches.index/mask: [S, B, n]``, ``n_w, tau: [S]``.
    """
    runs, num, d = h.shape
    flat = (batches.index + num * torch.arange(runs, device=h.device)[:, None, None]).flatten()
    hb = h.reshape(runs * num, d).index_select(0, flat).view(*batches.index.shape, d)  # [S, B, n, d]
    y = labels[batches.index]
    mask = batches.mask if batches.ragged else None
    n_w, tau = n_w[:, None], tau[:, None]
    per_batch = batch_loss(loss, hb, y, prototypes, n_w, tau, prototype_anchors, mask=mask, validate=validate)
    return per_batch.sum(-1)


def _scheduler(cfg: SimConfig, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.schedule == "step":  # x0.1 at 1/3 and 2/3 of the epochs
        return torch.optim.lr_scheduler.MultiStepLR(opt, [cfg.epochs // 3, 2 * cfg.epochs // 3], 0.1)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _retract(h: torch.Tensor, relu: bool) -> torch.Tensor:
    if relu:
        h = h.clamp_min(0)
    return F.normalize(h, dim=-1)


def num_samples(cfg: SimConfig) -> int:
    """N, the total class count of ``cfg``'s profile, without building the ``[k]`` counts (an upper bound for
    long-tail; the sum of ``counts`` when given): sizes are checked before anything is allocated."""
    if cfg.counts is not None:
        return int(cfg.class_counts().sum())
    k, n = cfg.k, cfg.n_major
    if cfg.profile == "balanced":
        return k * n
    if cfg.profile == "step":
        from ufm.imbalance import minority_classes

        k_min = minority_classes(k, cfg.minority_fraction)
        return (k - k_min) * n + k_min * int(n // cfg.ratio)
    if k == 1 or cfg.ratio == 1:
        return k * n
    q = cfg.ratio ** (-1 / (k - 1))  # sum_c n q^c, c = 0..k-1
    return math.ceil(n * (1 - q**k) / (1 - q))


def num_classes(cfg: SimConfig) -> int:
    """k: the number of ``counts`` when given, else ``cfg.k``."""
    return len(cfg.class_counts()) if cfg.counts is not None else cfg.k


def memory_estimate(cfg: SimConfig) -> int:
    """Estimated peak bytes of :func:`simulate` for ``cfg``, from the sizes alone (S runs, N samples, d, k, batches).

    Terms: the embeddings with their gradient, Adam moments and the float64 initialization (S N d);
    each epoch's gathered batches (S B n d) and the similarities of each batch with the prototypes and their
    backward (S B n (n + k), 4 copies), NC1 (12 S d^2), within ~30% of the peak measured on the CPU; G_* (k^2).
    """
    e = 4 if cfg.dtype == "float32" else 8
    runs, n_total, d, k = len(cfg.runs), num_samples(cfg), cfg.d, num_classes(cfg)
    if cfg.batching == "full":
        rows, batches = n_total, 1
    else:
        base = min(cfg.batch_size, n_total)
        rows, batches = base + (k if cfg.batching == "binding" else 0), math.ceil(n_total / base)
    state = runs * n_total * d * (5 * e + 16)
    gather = 3 * runs * batches * rows * d * e
    similarities = 4 * runs * batches * rows * (rows + k) * e
    nc1 = 12 * runs * d * d * e
    target = 8 * (8 * k * k + 3 * k * d)
    return int(state + gather + similarities + nc1 + target)


def check_simulation_size(cfg: SimConfig, max_memory_gb: float | None = None) -> None:
    """Refuse, before allocating anything, a simulation estimated (:func:`memory_estimate`) to exceed the memory
    limit (``max_memory_gb``, else ``$UFM_MAX_MEMORY_GB``, else the device's available memory)."""
    device = resolve_device(cfg.device)
    sizes = (f"{len(cfg.runs)} stacked run(s) x N = {num_samples(cfg)} samples x d = {cfg.d}, k = {num_classes(cfg)}, "
             f"{'full batch' if cfg.batching == 'full' else f'batches of {cfg.batch_size}'}, {cfg.dtype}")
    lower = ["{counts}" if cfg.counts else "{n_major}", "{k}", "{d}"]
    lower += [] if cfg.batching == "full" else ["{batch_size}"]
    lower += ["the stacked runs ({n_w} x {tau} x {seeds} values)"] if len(cfg.runs) > 1 else []
    check_memory(memory_estimate(cfg), f"this simulation ({sizes})",
                 f"lower {', '.join(lower[:-1])} or {lower[-1]}", max_memory_gb, device)


def simulate(
    cfg: SimConfig,
    progress: Callable[[int, int, dict], None] | None = None,
    max_memory_gb: float | None = None,
    on_estimate: Callable[[Estimate], None] | None = None,
    keep_grams: bool = False,
) -> SimResult:
    """Run the stacked UFM optimization of ``cfg``; ``progress(epoch, epochs, metrics)`` after each log;
    ``keep_grams`` keeps G_M at every logged epoch in memory (``SimResult.logged_g_m``, not saved).

    The sizes are checked first (:func:`check_simulation_size`; ``max_memory_gb`` overrides the limit).  After the
    first timed epochs a long run hands ``on_estimate`` what it expects to take (an :class:`ufm.eta.Estimate`; its
    ``line()`` reads "about 2 h 40 min for ... epochs at 9.6 ms each; expected to end at 14:32"); default: the
    callback of ``ufm.eta.reporting``, if any (the CLI prints it).  Ctrl-C raises :class:`ufm.interrupt.Interrupted`
    at the next epoch.
    """
    with interrupt.safe_points():
        return _simulate(cfg, progress, max_memory_gb, on_estimate, keep_grams)


def _simulate(cfg: SimConfig, progress: Callable[[int, int, dict], None] | None, max_memory_gb: float | None,
              on_estimate: Callable[[Estimate], None] | None, keep_grams: bool = False) -> SimResult:
    """:func:`simulate`'s work, inside its safe points."""
    check_simulation_size(cfg, max_memory_gb)
    problem = build_problem(cfg)
    device = resolve_device(cfg.device)
    dtype = getattr(torch, cfg.dtype)
    notes: list[str] = []
    if cfg.relu and bool((problem.g_star < -1e-9).any()):
        msg = (
            f"G_* ({cfg.geometry}) has negative cosines, which ReLU (non-negative) features cannot reach; "
            "the distance to G_* cannot go to zero (use --geometry orthogonal with --relu)"
        )
        warnings.warn(msg, stacklevel=3)
        notes.append(msg)

    runs = cfg.runs
    labels = problem.labels
    n_samples, k = len(labels), len(problem.counts)
    gens = [torch.Generator().manual_seed(run["seed"]) for run in runs]
    init = torch.stack([torch.randn(n_samples, cfg.d, generator=g, dtype=torch.float64) for g in gens])
    h = _retract(init.abs() if cfg.relu else init, cfg.relu).to(device=device, dtype=dtype)
    bound = [bound_examples(labels, k, g) if cfg.batching == "binding" else None for g in gens]

    n_w = torch.tensor([r["n_w"] for r in runs], dtype=dtype, device=device)
    tau = torch.tensor([r["tau"] for r in runs], dtype=dtype, device=device)
    w = problem.prototypes.to(device=device, dtype=dtype)
    y_dev = labels.to(device)
    g_star = problem.g_star.to(device=device, dtype=dtype)
    minority = problem.minority.to(device)

    h.requires_grad_(True)
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([h], lr=cfg.lr)
    else:
        opt = torch.optim.SGD([h], lr=cfg.lr, momentum=cfg.momentum)
    sched = _scheduler(cfg, opt)

    history: list[dict] = []
    logged: list[tuple[int, np.ndarray]] = []
    last_finite: torch.Tensor | None = None
    previous = None
    start = time.perf_counter()
    timer = Timer(cfg.epochs, "epochs", "simulation", on_estimate)  # says what the whole will take (ufm.eta)
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        interrupt.check()
        batches = _stacked_batches(cfg, labels, gens, bound).to(device)
        loss = batchset_loss(h, y_dev, batches, w, n_w, tau, cfg.loss, cfg.prototype_anchors, validate=epoch == 1)
        if not bool(torch.isfinite(loss).all()):
            bad = torch.nonzero(~torch.isfinite(loss)).flatten().tolist()
            raise SimulationDiverged(
                f"the loss became non-finite at epoch {epoch} for runs {[runs[i] for i in bad]}; last finite losses "
                f"{None if last_finite is None else last_finite.tolist()}. Lower the learning rate (--lr) or raise tau"
            )
        last_finite = loss.detach()
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        with torch.no_grad():
            h.grad -= (h.grad * h).sum(-1, keepdim=True) * h  # Riemannian gradient on the sphere
        opt.step()
        sched.step()
        with torch.no_grad():
            h.copy_(_retract(h, cfg.relu))

        change = None if previous is None else (loss.detach() - previous).abs() / previous.abs().clamp_min(1e-30)
        previous = loss.detach()
        converged = change is not None and cfg.tol > 0 and bool((change <= cfg.tol).all())
        if epoch % cfg.log_every == 0 or epoch == cfg.epochs or epoch == 1 or converged:
            with torch.no_grad():
                metrics = geometry_summary(h.detach(), y_dev, g_star, minority)
            entry = {"epoch": epoch, "loss": loss.detach().tolist()}
            entry.update({key: value.tolist() for key, value in metrics.items()})
            history.append(entry)
            if keep_grams:
                logged.append((epoch, mean_gram(h.detach(), y_dev, k).to("cpu", torch.float64).numpy()))
            if progress is not None:
                progress(epoch, cfg.epochs, entry)
        if converged:
            break
        timer.step(epoch)
    elapsed = time.perf_counter() - start

    return SimResult(
        config=cfg,
        counts=problem.counts.numpy(),
        labels=labels.numpy(),
        g_star=problem.g_star.numpy(),
        prototypes=problem.prototypes.numpy(),
        embeddings=h.detach().to("cpu", torch.float64).numpy(),
        history=history,
        epochs_run=epoch,
        elapsed_s=elapsed,
        device=str(device),
        warnings=notes,
        logged_g_m=logged,
        threads=thread_record(),
    )
