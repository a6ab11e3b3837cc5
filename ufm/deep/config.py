"""The configuration of one training run, the presets, and what a resumed run may change.

Every field of :class:`TrainConfig` is a ``ufm train`` flag (with its help text).  A preset is a named
set of runs, each a dict of the fields it sets; flags given on the command line override them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

from ufm._config import NON_NEGATIVE, POSITIVE, Range, check_at_least_one, check_choices, check_device_name
from ufm._config import check_values
from ufm._config import option as _opt
from ufm.choices import AUGMENTATIONS, HEADS, SCHEMES, check_copies
from ufm.errors import FieldError, literal
from ufm.spec import ImbalanceProfile, NamedGeometry

__all__ = ["TrainConfig", "PRESETS", "PLACE", "RESUMABLE", "preset", "resumed_config", "grid_runs"]

DATASETS = ("cifar10", "cifar100", "folder", "idx")
LOSSES = ("scl", "class-averaging", "ce")  # the batch losses of ufm.losses.LOSSES that train a network
REDUCTIONS = ("mean", "2B")  # as ufm.nn.PrototypeSupConLoss names them
SCHEDULES = ("step", "cosine")
BINDINGS = ("random", "first")
DTYPES = ("float32", "float64")
if TYPE_CHECKING:  # torch is imported where a run computes (the CLI refuses bad input without it)
    import torch

MAX_WIDTH = 1024  # 16 x the standard ResNet-18's width: 2.9 billion parameters


@dataclass(frozen=True)
class TrainConfig(NamedGeometry, ImbalanceProfile):
    """One training run.  Defaults are the paper's setting (350 epochs, SGD 0.1, batch 128, tau 0.1).

    The imbalance profile of the training set (profile, n_major, ratio, minority_fraction) and the named target
    geometry (geometry, gamma) are the shared blocks of :mod:`ufm.spec`; k is the data set's number of classes,
    and n_major defaults to 0 (all the images each majority class has).
    """

    N_MAJOR_RANGE: ClassVar[Range] = NON_NEGATIVE

    dataset: str = _opt("cifar10", "cifar10, cifar100 (official python format), folder ({train,test}/<class>/*) or idx")
    data_root: str = _opt("data", "folder holding the data set")
    # the profile's n_major, with the data set's default: 0 means all the images of each majority class
    n_major: int = _opt(0, "training samples per majority class (0: all the data set has)")
    test_per_class: int = _opt(0, "test samples per class (0: all)")
    loss: str = _opt("scl", "scl, class-averaging (BCL-style) or ce (fixed classifier W)")
    n_w: float = _opt(100.0, "copies of each prototype per batch (scl, class-averaging)")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too (scl)")
    prototype_cosines: tuple[float, ...] = _opt((), "prototypes whose Gram G_w differs from G_*: three cosines, "
                                                "majority-majority, minority-minority, across (a two-group block "
                                                "Gram, e.g. from ufm design-prototypes); none: G_w = G_*")
    reduction: str = _opt("mean", "mean: SupCon's mean over anchors (prototype copies counted when they are "
                                  "anchors); 2B: the sum over anchors divided by the 2B embeddings of the batch")
    tau: float = _opt(0.1, "temperature")
    batching: str = _opt("shuffle", "shuffle, balanced or binding")
    binding_examples: str = _opt("random", "binding: the bound example of each class is a random one or the first")
    batch_size: int = _opt(128, "images per batch (two augmented views each)")
    epochs: int = _opt(350, "epochs")
    lr: float = _opt(0.1, "SGD learning rate")
    lr_schedule: str = _opt("step", "step (x0.1 at 1/3 and 2/3 of the epochs) or cosine (to 0)")
    momentum: float = _opt(0.9, "SGD momentum")
    weight_decay: float = _opt(5e-4, "weight decay")
    width: int = _opt(64, "ResNet width (64: the standard ResNet-18)")
    head: str = _opt("linear", "embedding head: linear or relu (non-negative features)")
    augment: str = _opt("crop-flip", "crop-flip (random crop + flip), supcon (resized crop, flip, colour jitter, "
                                     "gray) or none (two identical views)")
    embed_dim: int = _opt(128, "embedding dimension of the linear head")
    eval_every: int = _opt(10, "evaluate G_M and accuracies every this many epochs")
    checkpoint_every: int = _opt(10, "write the checkpoint every this many epochs")
    seed: int = _opt(0, "random seed")
    device: str = _opt("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    compile: bool = _opt(False, "torch.compile the model")
    dtype: str = _opt("float32", "float32 (bf16 autocast on CUDA) or float64 (exact checks on the CPU)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self, {"dataset": DATASETS, "loss": LOSSES, "batching": tuple(s for s in SCHEMES if s != "full"),
                             "head": HEADS, "augment": AUGMENTATIONS, "reduction": REDUCTIONS,
                             "lr_schedule": SCHEDULES, "binding_examples": BINDINGS, "dtype": DTYPES,
})
        check_device_name(self.device)
        object.__setattr__(self, "prototype_cosines", tuple(float(c) for c in self.prototype_cosines))
        if len(self.prototype_cosines) not in (0, 3):
            raise FieldError(f"{{prototype_cosines}} takes three cosines (majority, minority, across), got "
                             f"{len(self.prototype_cosines)}; give three values or none")
        if any(not -1 <= c <= 1 for c in self.prototype_cosines):
            raise FieldError(f"{{prototype_cosines}} must lie in [-1, 1], got {list(self.prototype_cosines)}")
        check_values(self, {"test_per_class": NON_NEGATIVE, "n_w": NON_NEGATIVE, "tau": POSITIVE,
                            "lr": POSITIVE, "momentum": Range(0, 1, high_open=True), "weight_decay": NON_NEGATIVE,
                            "seed": NON_NEGATIVE})
        check_at_least_one(self, ("epochs", "batch_size", "eval_every", "checkpoint_every", "width", "embed_dim"))
        if self.loss == "scl":
            check_copies(self.n_w, self.prototype_anchors)
        if self.width > MAX_WIDTH:
            params = 11.2e6 * (self.width / 64) ** 2
            raise FieldError(f"{{width={self.width}}} makes a ResNet-18 of about {params / 1e9:.1f} billion parameters "
                             f"(width 64, the standard network, has 11 million); use a {{width}} <= {MAX_WIDTH}")

    def g_prototypes(self, counts) -> torch.Tensor:
        """``[k, k]`` the Gram G_w of the fixed prototypes (the classifier W for ce): G_* itself, or the two-group
        block Gram of ``prototype_cosines`` (:func:`ufm.design.block_gram`; majority: the classes with the largest
        count), refused unless unit vectors can have it."""
        if not self.prototype_cosines:
            return self.g_star(counts)
        from ufm.design import block_gram
        from ufm.geometry import check_gram

        try:
            return check_gram(block_gram(counts, *self.prototype_cosines))
        except ValueError as err:
            raise FieldError(f"{{prototype_cosines}} {list(self.prototype_cosines)} give no prototypes for class counts "
                             f"{[int(c) for c in counts]}: {err}; take cosines from ufm design-prototypes") from None

    def without_effect(self) -> dict[str, str]:
        """The fields that do nothing in this run, each with the reason, a FieldError fragment (``ufm train``
        refuses them when they are typed and have no effect in any of the runs they apply to)."""
        out = super().without_effect()  # the profile's and the geometry's
        if self.loss == "ce":
            out["n_w"] = "with {loss} ce (it has no prototype copies)"
        elif self.n_w == 0 and self.prototype_cosines:
            out["prototype_cosines"] = "with {n_w} = 0 (no prototype copies)"
        if self.loss != "scl":
            out["prototype_anchors"] = f"with {{loss}} {self.loss} (only scl has the two anchor conventions)"
        elif self.n_w == 0:
            out["prototype_anchors"] = "with {n_w} = 0 (no prototype copies)"
        if not (self.loss == "scl" and self.prototype_anchors and self.n_w > 0):
            out["reduction"] = "unless prototype copies are anchors (scl, n_w > 0): mean and 2B then coincide"
        if self.batching != "binding":
            out["binding_examples"] = f"with {{batching}} {self.batching} (binding only)"
        if self.head == "relu":
            out["embed_dim"] = "with {head} relu (its dimension is 8 x {width})"
        return out

    fields_without_effect = without_effect  # the older name


# Where a run goes, not what it computes: a run continued elsewhere (another data folder, device or compilation)
# is the same run (its chosen images are checked against the data on resume).
PLACE = frozenset({"data_root", "device", "compile"})
# What a resumed run may change: its length, its bookkeeping and where it runs; not the model, data or loss.
RESUMABLE = frozenset({"epochs", "eval_every", "checkpoint_every"}) | PLACE


def resumed_config(saved: TrainConfig, changes: dict) -> TrainConfig:
    """``saved`` with ``changes`` applied, refusing any change outside :data:`RESUMABLE`."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    saved_values = saved.to_dict()
    refused = sorted(n for n, v in changes.items() if n not in RESUMABLE and v != saved_values[n])
    if refused:
        detail = ", ".join(f"{{{n}}} (run has {literal(repr(saved_values[n]))}, asked {literal(repr(changes[n]))})"
                           for n in refused)
        raise FieldError(f"a resumed run continues its own model, data and loss; cannot change {detail}. Only "
                         f"{', '.join(f'{{{n}}}' for n in sorted(RESUMABLE))} may change on resume: start a new run "
                         "folder instead")
    return TrainConfig(**{**saved_values, **changes})


_PAPER = dict(dataset="cifar10", profile="step", ratio=10.0, epochs=350, batch_size=128, tau=0.1)
_KINI = dict(_PAPER, loss="scl", n_w=0.0, head="relu", geometry="orthogonal")
_SMALL = dict(dataset="folder", profile="step", ratio=10.0, n_major=200, test_per_class=100, width=16,
              embed_dim=32, epochs=30, batch_size=128, lr=0.1, eval_every=5, checkpoint_every=10)
# Fashion-MNIST (IDX) on 2 CPU cores: STEP R = 10 with 200 and 20 images per class, no augmentation (two
# identical views), a narrow ResNet-18 and a cosine schedule, to the terminal phase in minutes per run.
_CPU_FIG1 = dict(dataset="idx", data_root="/usr/share/datasets/fashion-mnist", profile="step", ratio=10.0,
                 n_major=200, test_per_class=200, width=16, embed_dim=32, epochs=40, batch_size=128, lr=0.05,
                 lr_schedule="cosine", augment="none", tau=0.1, eval_every=5, checkpoint_every=5)
# CIFAR-10 (the JPEG copy, an image folder) on 2 CPU cores: the cpu-fig1 recipe (STEP R = 10 with 200 and 20 images
# per class, no augmentation, width 16) did not reach the terminal phase in 40 epochs on CIFAR (train NCC accuracy 0.75
# at epoch 20): colour images are harder to memorize, so 150 epochs (1,350 steps of 128) at a higher cosine-decayed
# learning rate 0.1, with evaluations every 10 epochs to save time; about 12 minutes a run on this machine.
_CPU_FIG1_CIFAR = dict(dataset="folder", data_root="data/cifar10-jpeg", profile="step", ratio=10.0, n_major=200,
                       test_per_class=200, width=16, embed_dim=32, epochs=150, batch_size=128, lr=0.1,
                       lr_schedule="cosine", augment="none", tau=0.1, eval_every=10, checkpoint_every=10)
# CIFAR-10-LT, the long-tail literature's protocol (Cao et al. 2019): the exponential profile at ratio 100 (--ratio 10
# or 50 for the others) with 5,000 images in the largest class (12,406 in all at 100), evaluated on the whole balanced
# test set (10,000 images) by the linear probe on frozen embeddings (the two-stage SupCon protocol), nearest class
# centre and nearest prototype, with many/medium/few-shot accuracies.  The standard ResNet-18 (width 64, 128-d head),
# SupCon's augmentation, 200 epochs of SGD at 0.1 on a cosine schedule, batches of 256: for a GPU.  The training
# images of each class are drawn at random per seed (the literature takes the first ones: same counts).
_LT = dict(dataset="cifar10", profile="long-tail", ratio=100.0, n_major=5000, test_per_class=0, width=64,
           embed_dim=128, augment="supcon", epochs=200, batch_size=256, lr=0.1, lr_schedule="cosine", tau=0.1,
           eval_every=20, checkpoint_every=10)
PRESETS: dict[str, dict[str, dict]] = {
    # The three runs of the paper's Figure 1 on STEP CIFAR-10, R = 10 (GPU).
    "paper-fig1": {
        "scl-nw0": {**_PAPER, "loss": "scl", "n_w": 0.0},
        "class-averaging-binding": {**_PAPER, "loss": "class-averaging", "n_w": 0.0, "batching": "binding"},
        "scl-nw100": {**_PAPER, "loss": "scl", "n_w": 100.0},
    },
    # Kini et al. 2023: post-ReLU 512-d features, no prototypes, orthogonal-frame target; reshuffled batches
    # against batch binding with the first example of each class (GPU).
    "kini2023": {
        "scl-shuffle": {**_KINI},
        "scl-binding": {**_KINI, "batching": "binding", "binding_examples": "first"},
    },
    # The paper's three Figure 1 runs on Fashion-MNIST, converged on a 2-core CPU (see the README).
    "cpu-fig1": {
        "scl-nw0": {**_CPU_FIG1, "loss": "scl", "n_w": 0.0},
        "class-averaging-binding": {**_CPU_FIG1, "loss": "class-averaging", "n_w": 0.0, "batching": "binding"},
        "scl-nw100": {**_CPU_FIG1, "loss": "scl", "n_w": 100.0},
    },
    # The same three runs on CIFAR-10 (the JPEG copy: --data-root <folder>/cifar10-jpeg), on a 2-core CPU.
    "cpu-fig1-cifar": {
        "scl-nw0": {**_CPU_FIG1_CIFAR, "loss": "scl", "n_w": 0.0},
        "class-averaging-binding": {**_CPU_FIG1_CIFAR, "loss": "class-averaging", "n_w": 0.0, "batching": "binding"},
        "scl-nw100": {**_CPU_FIG1_CIFAR, "loss": "scl", "n_w": 100.0},
    },
    # CIFAR-10-LT at ratio 100 (GPU): SupCon, SCL with fixed ETF prototypes (both anchor conventions), class averaging
    # with binding (BCL-style), CE with the fixed ETF classifier.
    "cifar10-lt": {
        "supcon": {**_LT, "loss": "scl", "n_w": 0.0},
        "scl-etf": {**_LT, "loss": "scl", "n_w": 100.0},
        "scl-etf-batch-anchors": {**_LT, "loss": "scl", "n_w": 100.0, "prototype_anchors": False},
        "class-averaging-binding": {**_LT, "loss": "class-averaging", "n_w": 0.0, "batching": "binding"},
        "ce-etf": {**_LT, "loss": "ce"},
    },
    # A narrow ResNet on a small STEP subset of CIFAR-10 images (folder) for a few minutes on 2 CPU cores.
    "cpu-small": {
        "scl-nw0": {**_SMALL, "loss": "scl", "n_w": 0.0},
        "scl-nw100": {**_SMALL, "loss": "scl", "n_w": 100.0},
    },
}


def grid_runs(runs: dict[str, TrainConfig], grid: dict[str, tuple]) -> dict[str, TrainConfig]:
    """Every run of ``runs`` at every point of the Cartesian product ``grid`` (field -> values), named
    ``RUN/FIELD=V,...`` (or ``FIELD=V,...`` for a single unnamed run ``""``): a grid of training configs.
    A grid field without effect in every config (:meth:`TrainConfig.without_effect`) is refused: its values would
    train identical runs."""
    import itertools

    from ufm.grid import point_label, refuse_without_effect

    out = {}
    for name, cfg in runs.items():
        for combo in itertools.product(*grid.values()):
            values = dict(zip(grid, combo))
            label = point_label(values)
            out[f"{name}/{label}" if name else label] = TrainConfig(**{**cfg.to_dict(), **values})
    refuse_without_effect(list(out.values()), grid, what="runs")
    return out


def preset(name: str, overrides: dict | None = None) -> dict[str, TrainConfig]:
    """The named runs of a preset as configs, with ``overrides`` (field -> value) applied to every run."""
    if name not in PRESETS:
        raise FieldError(f"unknown {{preset}} {literal(repr(name))}; choose one of {', '.join(PRESETS)}")
    return {run: TrainConfig(**{**values, **(overrides or {})}) for run, values in PRESETS[name].items()}
