"""Train a ResNet-18 with SCL and fixed prototypes on an imbalanced image data set; log G_M through training.

One run folder holds ``config.json``, ``data.npz`` (the class counts and the chosen training indices),
``metrics.jsonl`` (one line per evaluation), ``checkpoint.pt`` (model, optimizer, scheduler, epoch,
random-generator state and history; written atomically every ``checkpoint_every`` epochs) and, at the
end, ``arrays.npz`` (final G_M, uncentered and centered) and ``summary.json``.  ``resume=True`` continues
from the checkpoint; on the CPU with a fixed seed the result equals an uninterrupted run.

Every random draw (batches, augmentation) comes from one seeded ``torch.Generator`` saved in the
checkpoint; the model is initialized under a forked global RNG, so nothing else is touched.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ufm._config import check_at_least_one, check_choices, from_dict
from ufm._config import option as _opt
from ufm.analysis import class_means, geometry_summary, gram_distance, mean_gram
from ufm.batching import SCHEMES, bound_examples, epoch_batches
from ufm.deep.augment import AUGMENTATIONS, crop_flip, supcon_augment
from ufm.deep.data import ImageData, imbalanced_subset, load_cifar, load_idx, load_image_folder
from ufm.deep.model import HEADS, ResNet18, check_head_reaches
from ufm.geometry import make_gram, prototypes_from_gram
from ufm.imbalance import class_counts, minority_mask
from ufm.losses import ce_fixed_classifier_loss, class_averaging_loss, scl_loss
from ufm.runio import atomic_path, read_json, write_json, write_jsonl, write_npz
from ufm.simulate import resolve_device

__all__ = ["TrainConfig", "PRESETS", "train", "load_data"]

DATASETS = ("cifar10", "cifar100", "folder", "idx")
LOSSES = ("scl", "class-averaging", "ce")


@dataclass(frozen=True)
class TrainConfig:
    """One training run.  Defaults are the paper's setting (350 epochs, SGD 0.1, batch 128, tau 0.1)."""

    dataset: str = _opt("cifar10", "cifar10, cifar100 (official python format), folder ({train,test}/<class>/*) or idx")
    data_root: str = _opt("data", "folder holding the data set")
    profile: str = _opt("step", "imbalance profile of the training set: balanced, step or long-tail")
    ratio: float = _opt(10.0, "imbalance ratio R")
    minority_fraction: float = _opt(0.5, "fraction of minority classes (step)")
    n_major: int = _opt(0, "training samples per majority class (0: all the data set has)")
    test_per_class: int = _opt(0, "test samples per class (0: all)")
    loss: str = _opt("scl", "scl, class-averaging (BCL-style) or ce (fixed classifier W)")
    n_w: float = _opt(100.0, "copies of each prototype per batch (scl, class-averaging)")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too")
    geometry: str = _opt("etf", "prototype Gram G_*: etf, orthogonal or minority")
    gamma: float = _opt(1.0, "strength of the minority geometry")
    tau: float = _opt(0.1, "temperature")
    batching: str = _opt("shuffle", "shuffle, balanced or binding")
    batch_size: int = _opt(128, "images per batch (two augmented views each)")
    epochs: int = _opt(350, "epochs")
    lr: float = _opt(0.1, "SGD learning rate (x0.1 at 1/3 and 2/3 of the epochs)")
    momentum: float = _opt(0.9, "SGD momentum")
    weight_decay: float = _opt(5e-4, "weight decay")
    width: int = _opt(64, "ResNet width (64: the standard ResNet-18)")
    head: str = _opt("linear", "embedding head: linear or relu (non-negative features)")
    augment: str = _opt("crop-flip", "crop-flip (random crop + flip) or supcon (resized crop, flip, colour jitter, gray)")
    embed_dim: int = _opt(128, "embedding dimension of the linear head")
    eval_every: int = _opt(10, "evaluate G_M and accuracies every this many epochs")
    checkpoint_every: int = _opt(10, "write the checkpoint every this many epochs")
    seed: int = _opt(0, "random seed")
    device: str = _opt("auto", "auto (CUDA when present), cpu or cuda")
    compile: bool = _opt(False, "torch.compile the model (CUDA)")

    def __post_init__(self) -> None:
        from ufm._config import NON_NEGATIVE, POSITIVE, UNIT, Range, check_device_name, check_values
        from ufm.imbalance import PROFILES

        check_choices(self, {"dataset": DATASETS, "loss": LOSSES, "batching": tuple(s for s in SCHEMES if s != "full"),
                             "head": HEADS, "augment": AUGMENTATIONS, "profile": PROFILES,
                             "geometry": ("etf", "orthogonal", "minority")})
        check_device_name(self.device)
        check_values(self, {"ratio": Range(1), "minority_fraction": UNIT, "n_major": NON_NEGATIVE,
                            "test_per_class": NON_NEGATIVE, "n_w": NON_NEGATIVE, "gamma": NON_NEGATIVE, "tau": POSITIVE,
                            "lr": POSITIVE, "momentum": Range(0, 1, high_open=True), "weight_decay": NON_NEGATIVE,
                            "seed": NON_NEGATIVE})
        check_at_least_one(self, ("epochs", "batch_size", "eval_every", "checkpoint_every", "width", "embed_dim"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return from_dict(cls, data)


_PAPER = dict(dataset="cifar10", profile="step", ratio=10.0, epochs=350, batch_size=128, tau=0.1)
_SMALL = dict(dataset="folder", profile="step", ratio=10.0, n_major=200, test_per_class=100, width=16,
              embed_dim=32, epochs=30, batch_size=128, lr=0.1, eval_every=5, checkpoint_every=10)
PRESETS: dict[str, dict[str, dict]] = {
    # The three runs of the paper's Figure 1 on STEP CIFAR-10, R = 10.
    "paper-fig1": {
        "scl-nw0": {**_PAPER, "loss": "scl", "n_w": 0.0},
        "class-averaging-binding": {**_PAPER, "loss": "class-averaging", "n_w": 0.0, "batching": "binding"},
        "scl-nw100": {**_PAPER, "loss": "scl", "n_w": 100.0},
    },
    # A narrow ResNet on a small STEP subset that finishes in minutes on 2 CPU cores.
    "cpu-small": {
        "scl-nw0": {**_SMALL, "loss": "scl", "n_w": 0.0},
        "scl-nw100": {**_SMALL, "loss": "scl", "n_w": 100.0},
    },
}

CIFAR_MEAN = (125.3, 123.0, 113.9)
CIFAR_STD = (63.0, 62.1, 66.7)


def load_data(cfg: TrainConfig) -> tuple[ImageData, ImageData]:
    """(train, test) from ``cfg.dataset`` under ``cfg.data_root``."""
    if cfg.dataset in ("cifar10", "cifar100"):
        return load_cifar(cfg.data_root, cfg.dataset, "train"), load_cifar(cfg.data_root, cfg.dataset, "test")
    if cfg.dataset == "folder":
        return load_image_folder(cfg.data_root, "train"), load_image_folder(cfg.data_root, "test")
    return load_idx(cfg.data_root, "train"), load_idx(cfg.data_root, "test")


def _prepare_data(cfg: TrainConfig) -> tuple[ImageData, ImageData, torch.Tensor, torch.Tensor]:
    """(imbalanced train subset, test set, class counts, the chosen indices into the full training set)."""
    train, test = load_data(cfg)
    k = len(train.classes)
    available = int(torch.bincount(train.labels, minlength=k).min())
    n_major = cfg.n_major or available
    counts = class_counts(cfg.profile, k, n_major, cfg.ratio, cfg.minority_fraction)
    index = imbalanced_subset(train.labels, counts, cfg.seed)
    train = train.subset(index)
    if cfg.test_per_class:
        test = test.subset(imbalanced_subset(test.labels, [cfg.test_per_class] * k, cfg.seed + 1))
    return train, test, counts, index


def _embed(model: ResNet18, images: torch.Tensor, mean, std, batch: int = 512) -> torch.Tensor:
    """Unit embeddings of uint8 images, eval mode, no augmentation: ``[N, d]`` float32."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = _normalize(images[start : start + batch], mean, std)
            out.append(model(x).float())
    model.train()
    return torch.cat(out)


def _normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean[: x.shape[1]], device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std[: x.shape[1]], device=x.device).view(1, -1, 1, 1)
    return (x.float() - m) / s


def _evaluate(model, train: ImageData, test: ImageData, w: torch.Tensor, g_star, minority, mean, std) -> dict:
    k = len(train.classes)
    z_train = _embed(model, train.images, mean, std)
    z_test = _embed(model, test.images, mean, std)
    summary = geometry_summary(z_train.double(), train.labels, g_star, minority)
    centered = mean_gram(z_train.double(), train.labels, k, center=True)
    centers = torch.nn.functional.normalize(class_means(z_train, train.labels, k), dim=-1)
    ncc = (torch.argmax(z_test @ centers.T, 1) == test.labels).float().mean()
    proto = (torch.argmax(z_test @ w.float().T, 1) == test.labels).float().mean()
    out = {key: float(value) for key, value in summary.items()}
    out["distance_centered"] = float(gram_distance(centered, g_star))
    out["ncc_accuracy"] = float(ncc)
    out["prototype_accuracy"] = float(proto)
    return out


def _linear_probe(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy of multinomial logistic regression fitted (L-BFGS) on frozen train embeddings."""
    k = int(y_train.max()) + 1
    probe = torch.nn.Linear(z_train.shape[1], k).to(z_train.device)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(z_train), y_train) + 1e-4 * probe.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((probe(z_test).argmax(1) == y_test).float().mean())


def _batch_loss(cfg: TrainConfig, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean over the 2B embeddings of the batch of the configured loss (the losses sum over anchors)."""
    if cfg.loss == "scl":
        total = scl_loss(z, y, w, cfg.n_w, cfg.tau, cfg.prototype_anchors, validate=False)
    elif cfg.loss == "class-averaging":
        total = class_averaging_loss(z, y, w, cfg.n_w, cfg.tau, validate=False)
    else:
        total = ce_fixed_classifier_loss(z, y, w, cfg.tau, validate=False)
    return total / len(z)


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: Callable[[int, int, dict], None] | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run_dir``; returns the summary.

    ``stop_after``: stop after this epoch (writing a checkpoint), as if the run were killed there.
    """
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / "checkpoint.pt"
    if resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint in {run_dir}; start the run without --resume")
        saved = TrainConfig.from_dict(read_json(run_dir / "config.json"))
        if saved != cfg:
            cfg = saved  # the folder's own config wins: a resumed run continues what it was
    device = resolve_device(cfg.device)
    train_set, test_set, counts, train_index = _prepare_data(cfg)
    k = len(train_set.classes)
    g_star = make_gram(cfg.geometry, k, counts, cfg.gamma)
    check_head_reaches(g_star, cfg.head)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = ResNet18(cfg.width, cfg.head, cfg.embed_dim, train_set.images.shape[1])
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if cfg.compile else model
    w = prototypes_from_gram(g_star, model.embed_dim, seed=None if cfg.head == "relu" else 0,
                             dtype=torch.float32, device=device)
    g_star_dev = g_star.to(device=device, dtype=torch.float64)
    minority = minority_mask(counts).to(device)
    mean, std = (CIFAR_MEAN, CIFAR_STD) if train_set.images.shape[1] == 3 else ((127.5,), (127.5,))
    train_dev, test_dev = train_set.to(device), test_set.to(device)

    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, cfg.epochs // 3), max(1, 2 * cfg.epochs // 3)], 0.1)
    gen = torch.Generator().manual_seed(cfg.seed)
    bound = bound_examples(train_set.labels, k, gen) if cfg.batching == "binding" else None
    history: list[dict] = []
    start_epoch = 1
    if resume:
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        bound = state["bound"]
        history = state["history"]
        start_epoch = state["epoch"] + 1
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", cfg.to_dict())
        write_npz(run_dir / "data.npz", counts=counts.numpy(), classes=np.array(train_set.classes),
                  train_index=train_index.numpy())

    def save_checkpoint(epoch: int) -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "generator": gen.get_state(), "bound": bound, "history": history, "epoch": epoch}
        with atomic_path(checkpoint_path) as tmp:
            torch.save(state, tmp)

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        start = time.perf_counter()
        batches = epoch_batches(train_set.labels, cfg.batch_size, cfg.batching, gen, k, bound)
        total, seen = 0.0, 0
        for index, keep in zip(batches.index, batches.mask):
            idx = index[keep].to(device)
            augment = crop_flip if cfg.augment == "crop-flip" else supcon_augment
            views = torch.cat([augment(train_dev.images[idx], gen), augment(train_dev.images[idx], gen)])
            y = train_dev.labels[idx].repeat(2)
            with autocast:
                z = forward(_normalize(views, mean, std))
            loss = _batch_loss(cfg, torch.nn.functional.normalize(z.float(), dim=-1), y, w)
            if not torch.isfinite(loss):
                raise ValueError(f"the loss became non-finite at epoch {epoch}; lower --lr or raise --tau")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        sched.step()
        entry = {"epoch": epoch, "loss": total / seen, "images_per_s": seen / (time.perf_counter() - start)}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            entry.update(_evaluate(model, train_dev, test_dev, w, g_star_dev, minority, mean, std))
        history.append(entry)
        write_jsonl(run_dir / "metrics.jsonl", history)
        if progress is not None:
            progress(epoch, cfg.epochs, entry)
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs or epoch == stop_after:
            save_checkpoint(epoch)
        if stop_after is not None and epoch >= stop_after:
            return {"stopped_at": epoch}

    z_train = _embed(model, train_dev.images, mean, std)
    z_test = _embed(model, test_dev.images, mean, std)
    g_m = mean_gram(z_train.double(), train_dev.labels, k)
    g_m_centered = mean_gram(z_train.double(), train_dev.labels, k, center=True)
    write_npz(run_dir / "arrays.npz", g_m=g_m.cpu().numpy(), g_m_centered=g_m_centered.cpu().numpy(),
              g_star=g_star.numpy(), counts=counts.numpy())
    summary = {
        "epochs": epoch,
        "counts": counts.tolist(),
        "final": history[-1] if history else {},
        "linear_probe_accuracy": _linear_probe(z_train, train_dev.labels, z_test, test_dev.labels),
        "device": str(device),
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def preset(name: str) -> dict[str, TrainConfig]:
    """The named runs of a preset as configs."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {run: TrainConfig(**values) for run, values in PRESETS[name].items()}
