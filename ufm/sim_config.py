"""The configuration of a UFM simulation (:class:`SimConfig`): the stacked runs, the loss and its options, the
optimizer and schedule, and the checks made before anything is allocated.  :mod:`ufm.simulate` runs it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ufm._config import NON_NEGATIVE, POSITIVE, Range, check_choices, check_device_name, check_values, first_repeat
from ufm._config import option as _opt
from ufm.choices import LOSS_OPTIONS, SCHEMES, check_copies
from ufm.errors import FieldError
from ufm.spec import ClassCounts, TargetGeometry

__all__ = ["SimConfig", "SimulationDiverged", "LOSSES", "LOSS_OPTIONS", "OPTIMIZERS", "SCHEDULES", "DEFAULT_N_W"]


LOSSES = tuple(LOSS_OPTIONS)  # the loss registry's names (ufm.losses.LOSSES); LOSS_OPTIONS: the options of each
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "step", "cosine")
DEFAULT_N_W = (0.0, 100.0)


class SimulationDiverged(ValueError):
    """The loss became non-finite; the message names the epoch and the last finite values."""


@dataclass(frozen=True)
class SimConfig(TargetGeometry, ClassCounts):
    """One experiment: a class-count profile, a target geometry, a loss, batching and an optimizer.

    The runs are the product ``n_w x tau x seeds`` (stacked).  Defaults: k = 10 classes, STEP imbalance
    R = 10 with half the classes minority, ETF prototypes, SCL with n_w = 0 and n_w = 100 side by side.

    Validated when built: every number finite and in range, no value repeated in ``n_w``, ``tau``, ``seeds``,
    several ``n_w`` refused for a loss without prototype copies (identical runs), ``geometry`` refused beside
    ``gram_file``.  :meth:`without_effect` lists the fields that do nothing here (``gamma`` without the minority
    geometry, ``momentum`` with Adam, ``batch_size`` in full batch, ...): the CLI refuses them when typed.
    ``n_w=None`` means (0, 100) for losses with prototype copies and (0,) for the others (see ``LOSS_OPTIONS``);
    ``prototype_anchors=None`` means True where the loss has the option and is recorded None elsewhere.
    """

    d: int = _opt(32, "embedding dimension")
    loss: str = _opt("scl", "scl, class-averaging (BCL-style), ce (fixed classifier W), limit (exact large-n_w "
                          "limit of scl) or prop1 (the published limit)")
    n_w: tuple[float, ...] | None = _opt(None, "copies of each prototype; repeat the option to stack runs (default "
                                               "0 and 100 for scl and class-averaging; the other losses have no n_w)")
    tau: tuple[float, ...] = _opt((0.1,), "temperature; repeat to stack runs")
    seeds: tuple[int, ...] = _opt((0,), "random seed; repeat to stack runs")
    prototype_anchors: bool | None = _opt(None, "prototype copies are anchors too (else only positives/negatives); "
                                                "scl and limit only, default on")
    relu: bool = _opt(False, "non-negative features (UFM+, Kini et al. 2023)")
    batching: str = _opt("shuffle", "full, shuffle (random reshuffling), balanced or binding")
    batch_size: int = _opt(32, "batch size n (binding adds the k bound examples; not for full)")
    optimizer: str = _opt("adam", "adam or sgd")
    lr: float = _opt(0.1, "learning rate")
    momentum: float = _opt(0.9, "SGD momentum, in [0, 1) (sgd only)")
    schedule: str = _opt("cosine", "learning-rate schedule: constant, step (x0.1 at 1/3, 2/3) or cosine")
    epochs: int = _opt(4000, "maximum number of epochs (one step per epoch)")
    tol: float = _opt(0.0, "stop when every run's relative loss change is below this (0: run all epochs)")
    log_every: int = _opt(10, "record metrics every this many epochs")
    dtype: str = _opt("float32", "float32 or float64")
    device: str = _opt("auto", "auto (CUDA when present), cpu, cuda or cuda:N")

    def __post_init__(self) -> None:
        for name in ("n_w", "tau", "seeds"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value) if isinstance(value, (list, tuple)) else (value,))
        super().__post_init__()
        check_choices(self, {"loss": LOSSES, "batching": SCHEMES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
                             "dtype": ("float32", "float64")})
        check_device_name(self.device)
        check_values(self, {"d": Range(1), "n_w": NON_NEGATIVE, "tau": POSITIVE,
                            "seeds": Range(0), "batch_size": Range(1), "lr": POSITIVE,
                            "momentum": Range(0, 1, high_open=True), "epochs": Range(1), "tol": NON_NEGATIVE,
                            "log_every": Range(1)})
        for name in ("n_w", "tau", "seeds"):
            value = getattr(self, name)
            if value is not None and not value:
                raise FieldError(f"{{{name}}} needs at least one value")
            again = None if value is None else first_repeat(value)
            if again is not None:
                raise FieldError(f"{{{name}}} repeats {again:g}: the stacked runs would be identical copies; give "
                                 "each value once")
        options = LOSS_OPTIONS[self.loss]
        if self.n_w is None:
            object.__setattr__(self, "n_w", DEFAULT_N_W if "n_w" in options else (0.0,))
        elif "n_w" not in options and len(self.n_w) > 1:
            raise FieldError(f"{{n_w}} = {list(self.n_w)} stacks runs that {{loss}} {self.loss} makes identical (it has "
                             "no prototype copies); give one {n_w} (or none), or use {loss} scl or class-averaging")
        if "prototype_anchors" in options:
            if self.prototype_anchors is None:
                object.__setattr__(self, "prototype_anchors", True)
        else:  # recorded as not applicable; the CLI refuses the option when it is typed (see without_effect)
            object.__setattr__(self, "prototype_anchors", None)
        if self.prototype_anchors:
            check_copies(self.n_w, True)

    def without_effect(self) -> dict[str, str]:
        """The fields that have no effect in this configuration, each with the reason (a FieldError fragment: its
        fields as placeholders, see :meth:`ufm.spec.ProblemSpec.without_effect`).

        The CLI refuses any of them given on the command line; in the library they keep their values (the
        configs of run folders and derived configs stay valid), except ``prototype_anchors``, recorded as None.
        """
        options = LOSS_OPTIONS[self.loss]
        out = super().without_effect()  # the class counts' and the target geometry's
        if "n_w" not in options:
            out["n_w"] = f"with {{loss}} {self.loss} (it has no prototype copies)"
        if "prototype_anchors" not in options:
            out["prototype_anchors"] = f"with {{loss}} {self.loss} (only scl and limit have the two anchor conventions)"
        elif self.n_w is not None and not any(self.n_w):
            out["prototype_anchors"] = "with {n_w} = 0 (no prototype copies)"
        if self.optimizer != "sgd":
            out["momentum"] = f"with {{optimizer}} {self.optimizer} (sgd only)"
        if self.batching == "full":
            out["batch_size"] = "with full batching (one batch of all samples)"
        return out

    @property
    def runs(self) -> list[dict]:
        """The stacked runs, in order: one dict (n_w, tau, seed) each."""
        return [{"n_w": w, "tau": t, "seed": s} for w, t, s in itertools.product(self.n_w, self.tau, self.seeds)]
