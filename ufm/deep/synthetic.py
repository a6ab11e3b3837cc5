"""Synthetic image data in CIFAR's official python format, for benchmarks and smoke runs without a download.

Images are uint8 noise around a per-class mean colour, so a network can separate the classes; nothing
here is meant to say anything about real images.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

__all__ = ["write_synthetic_cifar10"]


def write_synthetic_cifar10(root: str | Path, train_per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """Write ``cifar-10-batches-py/`` (5 train batches, test batch, meta) under ``root``; returns ``root``.

    ``train_per_class`` / ``test_per_class`` images of each of the 10 classes, ``[3, 32, 32]`` uint8 each.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    colours = rng.uniform(40, 215, (10, 3))

    def images(per_class: int) -> tuple[np.ndarray, list[int]]:
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        noise = rng.normal(0, 40, (len(labels), 3, 32, 32))
        data = np.clip(colours[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8)
        return data.reshape(len(labels), -1), labels.tolist()

    def dump(name: str, data: np.ndarray, labels: list[int]) -> None:
        with open(base / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)

    data, labels = images(train_per_class)
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        dump(f"data_batch_{i}", data[part], [labels[j] for j in part])
    dump("test_batch", *images(test_per_class))
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{c}".encode() for c in range(10)]}, f)
    return Path(root)
