"""TensorBoard event files of a training run, when TensorBoard is installed (``pip install -e ".[tensorboard]"``).

``metrics.jsonl`` stays the source of truth; the events under ``<run>/tensorboard`` mirror it for the field's
usual viewer: the scalars of each epoch (loss, learning rate, gradient norm, and at evaluations the distance to
G_*, NC1, the field's NC metrics ``nc1_ref``, ``cdnv``, ``nc2``, ``nc3``, ``nc4`` (:func:`ufm.analysis.nc_report`) and
the accuracies) and the G_M heatmap as an image.  Without TensorBoard nothing is written and training
runs unchanged.  A resumed run purges the events logged after its checkpoint (TensorBoard's ``purge_step``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["EventLog", "SCALARS", "available"]

SCALARS = ("loss", "lr", "grad_norm", "distance", "distance_centered", "nc1", "nc1_ref", "cdnv", "nc2", "nc3", "nc4",
           "train_ncc_accuracy", "ncc_accuracy", "prototype_accuracy")


def available() -> bool:
    """Whether TensorBoard's writer can be imported here."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def _heatmap(g: np.ndarray, title: str) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB image of a Gram matrix (the colour scale of the run's PNG figures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.0), dpi=80)
    image = ax.imshow(g, vmin=-1, vmax=1, cmap="RdBu_r")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


class EventLog:
    """Events of one run in ``<run_dir>/tensorboard``; a no-op when TensorBoard is not installed (``active``)."""

    def __init__(self, run_dir: str | Path, first_epoch: int = 1):
        self.writer = None
        if available():
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=first_epoch)

    @property
    def active(self) -> bool:
        return self.writer is not None

    def epoch(self, entry: dict, g_m: np.ndarray | None = None) -> None:
        """The scalars of one ``metrics.jsonl`` entry, and the G_M heatmap when the epoch was evaluated."""
        if self.writer is None:
            return
        step = int(entry["epoch"])
        for name in SCALARS:
            value = entry.get(name)
            if isinstance(value, (int, float)) and np.isfinite(value):
                self.writer.add_scalar(name, value, step)
        if g_m is not None:
            self.writer.add_image("G_M", _heatmap(np.asarray(g_m), f"G_M, epoch {step}"), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
