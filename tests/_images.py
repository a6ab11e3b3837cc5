"""Small image data sets on disk for the training tests (the library's and ``ufm train``'s)."""

import pickle

import numpy as np

from ufm.deep.config import TrainConfig


def write_image_folder(root):
    """An image-folder data set at ``root``: 3 classes of 32x32 RGB PNGs, 12 training and 4 test images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for c in range(3):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                img = np.clip(rng.normal(60 + 60 * c, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def tiny(root, **overrides):
    """A two-epoch CPU training config on the image folder at ``root``, with ``overrides``."""
    values = dict(dataset="folder", data_root=str(root), n_major=10, ratio=5, width=4, embed_dim=8, epochs=2,
                  batch_size=8, eval_every=1, checkpoint_every=1, device="cpu", n_w=20.0)
    return TrainConfig(**{**values, **overrides})


def write_cifar10(root, per_batch=6):
    """CIFAR-10 in its python format under ``root``: ``per_batch`` random images a batch; returns the test batch's
    (data, labels)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(base / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f)
    return data, labels
