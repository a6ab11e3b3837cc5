"""Train a ResNet-18 with SCL and fixed prototypes on an imbalanced image data set; log G_M through training.

One run folder holds ``config.json``, ``provenance.json`` (one record per start or resume),
``data.npz`` (the class counts and the chosen training indices), ``metrics.jsonl`` (one line per epoch,
with the evaluation every ``eval_every`` epochs), ``grams.npz`` (G_M at every evaluation),
``checkpoint.pt`` (model, optimizer, scheduler, epoch, random-generator state and history; written
atomically every ``checkpoint_every`` epochs) and, at the end, ``arrays.npz`` (final G_M) and
``summary.json``.  ``resume=True`` continues from the checkpoint; with a fixed seed on one device the
result equals an uninterrupted run.  A folder that already holds a run is never started over.  A checkpoint of
epoch 0 is written before the first step, so a started run can always be resumed.

Ctrl-C (:mod:`ufm.interrupt`) lands at the next training step or evaluation batch (a checkpoint being written is
finished first); :class:`ufm.interrupt.Interrupted` then says which checkpoint the folder keeps and how to continue.

Every random draw (batches, augmentation) comes from one seeded CPU ``torch.Generator`` saved in the
checkpoint; the model is initialized under a forked global RNG, so nothing else is touched.  The step
loop does not wait on the host: an epoch's batch indices and augmentation draws go to the device in one
copy, the running sums stay on the device, and finiteness is checked once per epoch.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ufm._checks import check_memory
from ufm.batching import bound_examples
from ufm.deep import distributed
from ufm.deep.distributed import check_nproc
from ufm.deep.augment import AUGMENT
from ufm.deep.batches import check_batches, epoch_plan as _epoch_plan
from ufm.deep.batches import first_of_each_class as _first_of_each_class
from ufm.deep.config import PRESETS, RESUMABLE, TrainConfig, preset, resumed_config
from ufm.deep.data import ImageData, check_splits, imbalanced_subset, load_cifar, load_idx, load_image_folder
from ufm.deep.evaluate import Normalizer, class_accuracies, embed, measure, probe_predictions, shot_accuracies
from ufm.deep.model import ResNet18, check_head_reaches
from ufm.deep.tensorboard import EventLog
from ufm.geometry import prototypes_from_gram
from ufm.imbalance import class_counts, minority_mask
from ufm.losses import batch_loss
from ufm.provenance import provenance
from ufm import eta, interrupt, runio
from ufm.runio import atomic_path, read_json, write_json, write_jsonl, write_npz
from ufm.devices import resolve_device
from ufm.errors import FieldError, literal

__all__ = ["TrainConfig", "PRESETS", "RESUMABLE", "train", "load_data", "preset", "resumed_config",
           "load_checkpoint", "anchor_count", "check_fresh_folder", "train_distributed", "check_nproc"]

CIFAR_MEAN = (125.3, 123.0, 113.9)
CIFAR_STD = (63.0, 62.1, 66.7)


def load_data(cfg: TrainConfig) -> tuple[ImageData, ImageData]:
    """(train, test) from ``cfg.dataset`` under ``cfg.data_root``."""
    if cfg.dataset in ("cifar10", "cifar100"):
        train, test = load_cifar(cfg.data_root, cfg.dataset, "train"), load_cifar(cfg.data_root, cfg.dataset, "test")
    elif cfg.dataset == "folder":
        train, test = load_image_folder(cfg.data_root, "train"), load_image_folder(cfg.data_root, "test")
    else:
        train = load_idx(cfg.data_root, "train")
        test = load_idx(cfg.data_root, "test", classes=train.classes)
    check_splits(train, test, cfg.data_root)
    return train, test


def _prepare_data(cfg: TrainConfig) -> tuple[ImageData, ImageData, torch.Tensor, torch.Tensor]:
    """(imbalanced train subset, test set, class counts, the chosen indices into the full training set)."""
    return select_data(cfg, *load_data(cfg))


def select_data(cfg: TrainConfig, train: ImageData, test: ImageData) -> tuple[ImageData, ImageData, torch.Tensor,
                                                                              torch.Tensor]:
    """:func:`_prepare_data` on data already loaded (``load_data(cfg)``): the subsets ``cfg`` trains and tests on."""
    k = len(train.classes)
    have = torch.bincount(train.labels, minlength=k)
    available = int(have.min())
    if available == 0:
        empty = [train.classes[c] for c in torch.nonzero(have == 0).flatten().tolist()]
        raise ValueError(f"classes {empty[:5]} have no training images under {cfg.data_root} (labels run 0..{k - 1}): "
                         "every class of the data set needs images")
    n_major = cfg.n_major or available
    counts = class_counts(cfg.profile, k, n_major, cfg.ratio, cfg.minority_fraction)
    index = imbalanced_subset(train.labels, counts, cfg.seed)
    train = train.subset(index)
    if cfg.test_per_class:
        test = test.subset(imbalanced_subset(test.labels, [cfg.test_per_class] * k, cfg.seed + 1, "test_per_class",
                                             "test"))
    return train, test, counts, index


def anchor_count(cfg: TrainConfig, batch_rows: int, num_classes: int) -> float:
    """The divisor of the batch loss (a sum over anchors) for ``cfg.reduction``.

    ``mean`` (SupCon): the number of anchors, the batch's embeddings plus, for SCL with prototype anchors,
    the ``k n_w`` prototype copies; ``2B``: the batch's embeddings only (then the prototype anchors make
    the gradient grow with n_w).  The same as :class:`ufm.nn.PrototypeSupConLoss`'s reductions."""
    if cfg.reduction == "mean" and cfg.loss == "scl" and cfg.prototype_anchors:
        return batch_rows + num_classes * cfg.n_w
    return float(batch_rows)


def _loss_fn(cfg: TrainConfig, w: torch.Tensor, k: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(z [2B, d] unit, y [2B]) -> scalar``: the configured loss with its reduction.

    n_w and tau are made device tensors once, so a step copies nothing from the host."""
    tau = torch.full((), cfg.tau, device=w.device)
    n_w = torch.full((), cfg.n_w, device=w.device)

    def loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        protos = w if cfg.loss == "ce" or cfg.n_w > 0 else None  # n_w = 0: plain SCL, no prototype rows
        total = batch_loss(cfg.loss, z, y, protos, n_w, tau, cfg.prototype_anchors, num_classes=k, validate=False)
        return total / anchor_count(cfg, len(z), k)

    return loss


def _schedule(cfg: TrainConfig) -> Callable[[int], float]:
    """Learning-rate factor after ``e`` finished epochs (a pure function of the config, so a resumed run with
    more epochs follows the schedule of its new length)."""
    if cfg.lr_schedule == "cosine":
        return lambda e: 0.5 * (1 + math.cos(math.pi * min(e, cfg.epochs) / cfg.epochs))
    milestones = (max(1, cfg.epochs // 3), max(1, 2 * cfg.epochs // 3))
    return lambda e: 0.1 ** sum(e >= m for m in milestones)


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "generator", "bound", "history", "grams", "epoch")


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint with every tensor on the CPU (the trainer moves what belongs on the device itself:
    the generator state and the bound examples stay on the CPU); a clear error for a file that is not one."""
    return runio.load_checkpoint(path, map_location="cpu", required=CHECKPOINT_KEYS)


def check_fresh_folder(run_dir: str | Path) -> None:
    """Refuse to start a run in a folder that already holds one, or where no folder can be made."""
    run_dir = Path(run_dir)
    held = [name for name in ("checkpoint.pt", "config.json", "metrics.jsonl") if (run_dir / name).exists()]
    if held:
        raise ValueError(f"{run_dir} already holds a run ({', '.join(held)}); continue a training run with "
                         f"--resume {run_dir}, or choose another --out")
    runio.check_out_dir(run_dir, "--out", run_folder=False)  # not under a file, and writable


@dataclass
class _State:
    """What a checkpoint holds besides the model, optimizer and scheduler."""

    history: list[dict]
    grams: list[dict]
    bound: torch.Tensor | None
    epoch: int


def memory_estimate(cfg: TrainConfig, train: ImageData, test: ImageData) -> float:
    """Bytes a run needs on its device: both data sets as uint8, the model with its gradient and momentum, and
    the activations of one step (two views of ``batch_size`` images, kept for the backward, and their gradient)."""
    from ufm.deep.model import activation_floats

    item = 8 if cfg.dtype == "float64" else 4
    channels, size = train.images.shape[1], tuple(train.images.shape[2:])
    params = 11.2e6 * (cfg.width / 64) ** 2
    acts = activation_floats(cfg.width, cfg.head, cfg.embed_dim, channels, size) * 2 * cfg.batch_size
    return train.images.numel() + test.images.numel() + 3 * params * item + 2 * acts * item


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: Callable[[int, int, dict], None] | None = None,
    stop_after: int | None = None,
    max_memory_gb: float | None = None,
) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run_dir``; returns the summary.

    With ``resume``, ``cfg`` may differ from the run's saved config only in :data:`RESUMABLE` fields
    (e.g. more epochs; build it with :func:`resumed_config`).  ``stop_after``: stop after this epoch
    (writing a checkpoint), as if the run were killed there.  ``max_memory_gb``: the limit of the size check made
    before anything is allocated (default: the memory the device has available, see ``ufm._checks.check_memory``).
    Ctrl-C raises :class:`ufm.interrupt.Interrupted` at the next step, saying what the folder keeps.
    """
    with noting_run(run_dir), interrupt.safe_points():
        return _train(cfg, Path(run_dir), resume, progress, stop_after, max_memory_gb)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, progress: Callable[[int, int, dict], None] | None,
           stop_after: int | None, max_memory_gb: float | None) -> dict:
    """:func:`train`'s work, inside its safe points."""
    checkpoint_path = run_dir / "checkpoint.pt"
    if resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint in {run_dir}; start the run without --resume")
        saved = TrainConfig.from_dict(read_json(run_dir / "config.json"))
        cfg = resumed_config(saved, {n: v for n, v in cfg.to_dict().items() if v != getattr(saved, n)})
        done = int(load_checkpoint(checkpoint_path)["epoch"])
        if cfg.epochs < done:
            raise FieldError(f"the run in {run_dir} has already trained {done} epochs, more than {{epochs}} = "
                             f"{cfg.epochs}: a resume cannot undo epochs; give {{epochs}} >= {done} to continue it, or "
                             "start a new run in another folder")
    else:
        check_fresh_folder(run_dir)
    device = resolve_device(cfg.device)
    group = distributed.from_env(device.type)  # None for one process
    main = group is None or group.is_main
    if group is not None:
        distributed.barrier()  # every rank has checked the folder before rank 0 writes into it
        if device.type == "cuda":
            device = torch.device("cuda", group.local_rank)
            torch.cuda.set_device(device)
    dtype = getattr(torch, cfg.dtype)
    train_set, test_set, counts, train_index = _prepare_data(cfg)
    k = len(train_set.classes)
    check_memory(memory_estimate(cfg, train_set, test_set),
                 f"training (ResNet-18 width {cfg.width}, batches of {cfg.batch_size} x 2 views, "
                 f"{len(train_set.labels) + len(test_set.labels)} images on {device})",
                 "lower {width}, {embed_dim} or {batch_size}, or train on fewer images ({n_major}, "
                 "{test_per_class})",
                 max_memory_gb, device)
    if resume:
        recorded = np.load(run_dir / "data.npz")["train_index"]
        if not np.array_equal(recorded, train_index.numpy()):
            raise FieldError(f"the data under {literal(cfg.data_root)} is not the data {literal(run_dir)} was trained "
                             "on (its chosen training images differ); point {data_root} at the original data")
    g_star = cfg.g_star(counts)
    check_head_reaches(g_star, cfg.head, cfg.embed_dim)
    check_batches(cfg, train_set.labels, k)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = ResNet18(cfg.width, cfg.head, cfg.embed_dim, train_set.images.shape[1])
    if group is not None:
        model = distributed.convert_batchnorm(model)
    cuda = device.type == "cuda"
    model = model.to(device, dtype, memory_format=torch.channels_last if cuda else torch.contiguous_format)
    g_w = cfg.g_prototypes(counts)  # G_* unless the prototypes are designed apart from the target
    check_head_reaches(g_w, cfg.head, cfg.embed_dim)
    w = prototypes_from_gram(g_w, model.embed_dim, seed=None if cfg.head == "relu" else 0, dtype=dtype,
                             device=device)
    g_star_dev = g_star.to(device=device, dtype=torch.float64)
    minority = minority_mask(counts).to(device)
    mean, std = (CIFAR_MEAN, CIFAR_STD) if train_set.images.shape[1] == 3 else ((127.5,), (127.5,))
    normalize = Normalizer(mean, std, train_set.images.shape[1], device, channels_last=cuda, dtype=dtype)
    train_dev, test_dev = train_set.to(device), test_set.to(device)
    loss_fn = _loss_fn(cfg, w, k)
    augment = AUGMENT[cfg.augment]

    distributed.check(group)  # the data is loaded and nothing is written yet
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg))
    gen = torch.Generator().manual_seed(cfg.seed)
    if resume:
        saved_state = load_checkpoint(checkpoint_path)
        model.load_state_dict(saved_state["model"])
        opt.load_state_dict(saved_state["optimizer"])  # moves the momentum buffers to the parameters' device
        sched.load_state_dict(saved_state["scheduler"])
        gen.set_state(saved_state["generator"])  # a CPU generator: its state stays on the CPU
        state = _State(saved_state["history"], saved_state["grams"], saved_state["bound"], saved_state["epoch"])
    else:
        bound = None
        if cfg.batching == "binding":
            first = cfg.binding_examples == "first"
            bound = _first_of_each_class(train_set.labels, k) if first else bound_examples(train_set.labels, k, gen)
        state = _State([], [], bound, 0)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "config.json", cfg.to_dict())  # kind.json: the engine's (ufm.engine)
            write_npz(run_dir / "data.npz", counts=counts.numpy(), classes=np.array(train_set.classes),
                      train_index=train_index.numpy())
    if main:
        starts = read_json(run_dir / "provenance.json") if (run_dir / "provenance.json").is_file() else []
        record = {**provenance(device), "from_epoch": state.epoch, "processes": group.world if group else 1}
        write_json(run_dir / "provenance.json", starts + [record])
    def save_checkpoint(epoch: int) -> None:
        blob = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "generator": gen.get_state(), "bound": state.bound, "history": state.history,
                "grams": state.grams, "epoch": epoch}
        with atomic_path(checkpoint_path) as tmp:
            torch.save(blob, tmp)

    if not resume and main:
        save_checkpoint(0)  # from here on the folder can be resumed
    distributed.check(group)
    net = distributed.wrap(model, device, group)
    forward = torch.compile(net) if cfg.compile else net

    stop = interrupt.check if group is None else None  # rank 0 evaluates alone: the others stop at the next step

    def run_evaluation(epoch: int) -> dict:
        metrics, grams = measure(model, (train_dev.images, train_dev.labels), (test_dev.images, test_dev.labels),
                                 normalize, w, g_star_dev, minority, check=stop)  # streamed: not all embeddings
        state.grams.append({"epoch": epoch, **{name: g.cpu().numpy() for name, g in grams.items()}})
        write_npz(run_dir / "grams.npz", epoch=np.array([g["epoch"] for g in state.grams]),
                  g_m=np.stack([g["g_m"] for g in state.grams]),
                  g_m_centered=np.stack([g["g_m_centered"] for g in state.grams]))
        return metrics

    bf16 = cuda and dtype == torch.float32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
    params = [p for p in model.parameters() if p.requires_grad]
    shares: dict[int, torch.Tensor] = {}  # batch size -> positions of this rank's views (several processes)
    epoch = state.epoch
    events = EventLog(run_dir, state.epoch + 1) if main else None  # TensorBoard, when installed
    first = state.epoch  # this start's time estimate (ufm.eta): in provenance.json, and shown as the caller asks
    keep = lambda est: write_json(run_dir / "provenance.json", starts + [{**record, "estimate": est.to_dict()}])  # noqa: E731
    timer = eta.Timer(cfg.epochs - first, "epochs", f"training {run_dir.name}", eta.also(keep) if main else eta.ignore,
                      min_steps=1)  # an epoch can take minutes
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        start = time.perf_counter()
        rows, offsets, draws = _epoch_plan(cfg, train_set.labels, k, state.bound, gen, augment)
        rows, draws = rows.to(device, non_blocking=True), {n: v.to(device, non_blocking=True) for n, v in draws.items()}
        loss_sum = torch.zeros((), device=device, dtype=dtype)
        grad_sum = torch.zeros((), device=device, dtype=dtype)
        for lo, hi in zip(offsets[:-1], offsets[1:]):
            distributed.check(group)  # Ctrl-C lands here, between steps, on every rank at the same step
            idx = rows[lo:hi]
            both, batch_draws = idx.repeat(2), {n: v[2 * lo : 2 * hi] for n, v in draws.items()}
            if group is not None:  # this rank embeds the two views of its share of the images
                mine = shares.setdefault(hi - lo, distributed.rank_positions(hi - lo, group).to(device))
                both, batch_draws = both[mine], {n: v[mine] for n, v in batch_draws.items()}
            with autocast:
                z = forward(normalize(augment.apply(train_dev.images[both], batch_draws)))
            z = distributed.gather_rows(torch.nn.functional.normalize(z.to(dtype), dim=-1), hi - lo, group)
            loss = loss_fn(z, train_dev.labels[idx].repeat(2))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_sum += torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            opt.step()
            loss_sum += loss.detach()
        sched.step()
        steps = len(offsets) - 1
        entry = {"epoch": epoch, "loss": float(loss_sum) / steps, "grad_norm": float(grad_sum) / steps,
                 "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        entry["images_per_s"] = int(offsets[-1]) / entry["seconds"]
        if not (math.isfinite(entry["loss"]) and math.isfinite(entry["grad_norm"])):
            raise FieldError(f"the loss became non-finite in epoch {epoch} (mean loss {entry['loss']}, gradient norm "
                             f"{entry['grad_norm']}); lower {{lr}}, raise {{tau}}, or resume from the last checkpoint")
        if main and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            entry.update(run_evaluation(epoch))
        state.history.append(entry)
        if main:
            write_jsonl(run_dir / "metrics.jsonl", state.history)
            evaluated = state.grams and state.grams[-1]["epoch"] == epoch
            events.epoch(entry, state.grams[-1]["g_m"] if evaluated else None)
            if progress is not None:
                progress(epoch, cfg.epochs, entry)
            if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs or epoch == stop_after:
                save_checkpoint(epoch)
        timer.step(epoch - first)
        if stop_after is not None and epoch >= stop_after:
            if events is not None:
                events.close()
            distributed.close(group)
            return {"stopped_at": epoch}

    if not main:
        distributed.close(group)
        return {"rank": group.rank, "epochs": epoch}
    z_train, z_test = embed(model, train_dev.images, normalize, check=stop), embed(model, test_dev.images, normalize,
                                                                                   check=stop)
    last = state.grams[-1]
    probe = probe_predictions(z_train, train_dev.labels, z_test, k)
    per_class = class_accuracies(z_train, train_dev.labels, z_test, test_dev.labels, w, probe)
    write_npz(run_dir / "arrays.npz", g_m=last["g_m"], g_m_centered=last["g_m_centered"], g_star=g_star.numpy(),
              g_w=g_w.numpy(), counts=counts.numpy())
    summary = {
        "epochs": epoch,
        "counts": counts.tolist(),
        "final": state.history[-1] if state.history else {},
        "linear_probe_accuracy": float((probe == test_dev.labels).float().mean()),
        "per_class_accuracy": per_class,
        "shot_accuracy": shot_accuracies(per_class, counts.tolist()),
        "device": str(device),
        "processes": group.world if group else 1,
        "train_seconds": sum(h["seconds"] for h in state.history),
    }
    write_json(run_dir / "summary.json", summary)
    events.close()
    distributed.close(group)
    return summary


def _train_process(cfg: dict, run_dir: str, resume: bool, stop_after: int | None,
                   max_memory_gb: float | None) -> dict:
    """One rank of :func:`train_distributed` (module level, so the launcher can import it)."""
    from ufm import threads

    threads.apply_choice(threads.per_rank(int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    with eta.reporting(eta.to_stderr, default=True):  # rank 0's time estimate on its stderr
        return train(TrainConfig.from_dict(cfg), run_dir, resume, stop_after=stop_after, max_memory_gb=max_memory_gb)


def train_distributed(cfg: TrainConfig, run_dir: str | Path, nproc: int, resume: bool = False,
                      stop_after: int | None = None, max_memory_gb: float | None = None) -> dict:
    """:func:`train` in ``nproc`` data-parallel processes on this node (torchrun's launcher; gloo on the CPU,
    NCCL with one GPU per process on CUDA); returns rank 0's summary."""
    check_nproc(cfg, nproc)
    if nproc == 1:
        return train(cfg, run_dir, resume, stop_after=stop_after, max_memory_gb=max_memory_gb)
    if not resume:
        check_fresh_folder(run_dir)
    with noting_run(run_dir):
        return distributed.launch(nproc, _train_process, cfg.to_dict(), str(run_dir), resume, stop_after,
                                  max_memory_gb)


@contextmanager
def noting_run(run_dir: str | Path) -> Iterator[None]:
    """An interrupt leaving the block says what ``run_dir`` keeps and how to continue it (:func:`interrupted_state`)."""
    try:
        yield
    except KeyboardInterrupt as err:
        raise interrupt.as_interrupted(err).note(*interrupted_state(run_dir)) from None


def interrupted_state(run_dir: str | Path) -> tuple[str, str]:
    """``(kept, how)`` for a training run interrupted in ``run_dir``: its checkpoint and ``--resume``, its summary if
    it had finished, or that nothing was written."""
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return f"{run_dir} had finished", f"its summary is {run_dir / 'summary.json'}"
    if (run_dir / "checkpoint.pt").is_file():
        epoch = int(load_checkpoint(run_dir / "checkpoint.pt")["epoch"])  # whole: written atomically
        return f"{run_dir} keeps its checkpoint of epoch {epoch}", f"continue with `ufm train --resume {run_dir}`"
    if (run_dir / "config.json").is_file():
        return f"{run_dir} holds no checkpoint yet", f"remove {run_dir} and re-run the same command"
    return f"nothing was written to {run_dir}", "re-run the same command to start it"
