"""Tiny IDX (MNIST-format) data sets for the training tests."""

import struct
from pathlib import Path

import numpy as np


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    dims = struct.pack(">II", *array.shape[1:]) if magic == 2051 else b""
    path.write_bytes(struct.pack(">II", magic, len(array)) + dims + array.astype(np.uint8).tobytes())


def tiny_idx(root: Path, k: int = 3, per_class: int = 6, size: int = 8) -> None:
    """Fashion-MNIST-format IDX files: k classes of 8 x 8 noise, each class with its own bright band."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        labels = np.repeat(np.arange(k), per_class)
        images = rng.integers(0, 60, (len(labels), size, size))
        for i, c in enumerate(labels):
            images[i, 2 * c: 2 * c + 3] += 150
        _write_idx(root / f"{prefix}-images-idx3-ubyte", images, 2051)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, 2049)
