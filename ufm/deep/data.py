"""Image data sets as one uint8 tensor ``[N, C, H, W]`` plus labels, from their official file formats.

- CIFAR-10 / CIFAR-100, official python format (``cifar-10-batches-py/``, ``cifar-100-python/``); an
  optional download from the official address with MD5 verification;
- an image folder, ``{root}/{train,test}/<class>/*.png|jpg|jpeg`` (classes sorted by name);
- MNIST / Fashion-MNIST IDX files (``train-images-idx3-ubyte[.gz]`` and friends).

Imbalanced training sets are drawn with :func:`imbalanced_subset` from the :mod:`ufm.imbalance` profiles;
test sets stay balanced.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ufm.errors import FieldError, literal

__all__ = [
    "ImageData",
    "check_splits",
    "CIFAR_SOURCES",
    "load_cifar",
    "download_cifar",
    "load_image_folder",
    "load_idx",
    "imbalanced_subset",
]

CIFAR_SOURCES = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 "cifar-100-python"),
}


@dataclass(frozen=True)
class ImageData:
    """``images: [N, C, H, W]`` uint8, ``labels: [N]`` long, ``classes``: names in label order."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def subset(self, index: torch.Tensor) -> "ImageData":
        return ImageData(self.images[index], self.labels[index], self.classes)

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.images.to(device), self.labels.to(device), self.classes)


def _missing(path: Path, what: str, how: str) -> Exception:
    """The error for ``what`` missing at ``path``: a file where a folder of the path should be is named as such."""
    for above in Path(path).parents:
        if above.exists():
            if above.is_dir():
                break
            return FieldError(f"{literal(above)} is a file, not a folder, so the {what} cannot be at {literal(path)}; "
                              "check {data_root}")
    return FileNotFoundError(f"{what} not found at {path}; {how}")


def _unpickle(path: Path) -> dict:
    """A CIFAR batch (a pickled dict).  Any failure of ``pickle.load`` here means the file is not one: random or
    truncated bytes raise any of the errors below."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, UnicodeDecodeError, OverflowError, MemoryError) as err:
        raise ValueError(f"{path} is not a CIFAR python-format batch ({type(err).__name__}: {err}); "
                         "download the data again") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} holds a pickled {type(batch).__name__}, not a CIFAR batch dict; download the data again")
    return batch


def _cifar_files(name: str, split: str) -> list[str]:
    """The batch files of a CIFAR split in the official python format."""
    if name == "cifar10":
        return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return [split]


def load_cifar(root: str | Path, name: str = "cifar10", split: str = "train") -> ImageData:
    """CIFAR-10 or CIFAR-100 (fine labels) in the official python format under ``root``."""
    if name not in CIFAR_SOURCES:
        raise ValueError(f"unknown CIFAR variant {name!r}; use cifar10 or cifar100")
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    url, _, folder = CIFAR_SOURCES[name]
    base = Path(root) / folder
    how = (f"download {url} and extract it into {root} (or run `ufm train --download`, or call "
           f"download_cifar({str(root)!r}, {name!r}))")
    if not base.is_dir():
        raise _missing(base, f"{name} ({folder}/)", how)
    files = _cifar_files(name, split)
    if name == "cifar10":
        meta, label_key, names_key = "batches.meta", b"labels", b"label_names"
    else:
        meta, label_key, names_key = "meta", b"fine_labels", b"fine_label_names"
    data, labels = [], []
    for file in files:
        if not (base / file).is_file():
            raise _missing(base / file, f"{name} file {file}", how)
        batch = _unpickle(base / file)
        if b"data" not in batch or label_key not in batch:
            raise ValueError(f"{base / file} lacks {b'data'!r} or {label_key!r}: not a {name} batch")
        pixels, batch_labels = np.asarray(batch[b"data"]), list(batch[label_key])
        if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(pixels) != len(batch_labels):
            raise ValueError(f"{base / file} holds {pixels.dtype} data of shape {pixels.shape} and {len(batch_labels)} "
                             "labels, not N x 3072 uint8 pixels with N labels: not a CIFAR batch; download the data again")
        data.append(pixels.reshape(-1, 3, 32, 32))
        labels.extend(batch_labels)
    classes = tuple(n.decode() for n in _unpickle(base / meta).get(names_key, ())) if (base / meta).is_file() else ()
    labels_t = torch.tensor(labels, dtype=torch.long)
    if not classes:
        classes = tuple(str(c) for c in range(int(labels_t.max()) + 1))
    return ImageData(torch.from_numpy(np.concatenate(data)), labels_t, classes)


def download_cifar(root: str | Path, name: str = "cifar10") -> Path:
    """Download and extract the official archive into ``root`` after checking its MD5; returns the folder.  Data
    already extracted there (every batch file of both splits) is kept: nothing is downloaded."""
    if name not in CIFAR_SOURCES:
        raise ValueError(f"unknown CIFAR variant {name!r}; use cifar10 or cifar100")
    url, md5, folder = CIFAR_SOURCES[name]
    root = Path(root)
    if all((root / folder / f).is_file() for split in ("train", "test") for f in _cifar_files(name, split)):
        return root / folder
    made = [p for p in (root, *root.parents) if not p.exists()]  # the folders a failed download removes again
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file, or a path under one
        raise ValueError(f"cannot make the data folder {root} ({err.strerror}); give a folder for the data") from None
    archive = root / url.rsplit("/", 1)[1]
    if not archive.is_file():
        partial = archive.with_name(archive.name + ".part")  # renamed when complete: never a truncated archive
        try:
            urllib.request.urlretrieve(url, partial)
            partial.replace(archive)
        except OSError as err:
            partial.unlink(missing_ok=True)
            for folder_made in made:
                if folder_made.is_dir() and not any(folder_made.iterdir()):
                    folder_made.rmdir()
            raise FileNotFoundError(
                f"could not download {url} ({err}); this machine may be offline: fetch the file elsewhere and put "
                f"it at {archive}"
            ) from err
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != md5:
        raise ValueError(f"{archive} has MD5 {digest}, expected {md5}: the download is corrupt; delete it and retry")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root / folder


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image_folder(root: str | Path, split: str = "train") -> ImageData:
    """``{root}/{split}/<class>/*.png|jpg|jpeg``, all images of one size, RGB or grayscale."""
    from PIL import Image

    base = Path(root) / split
    if not base.is_dir():
        raise _missing(base, "image folder split", f"expected {root}/{{train,test}}/<class>/<image> files")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))  # not .cache etc.
    if not classes:
        raise ValueError(f"{base} has no class folders; expected {base}/<class>/<image>")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (base / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            try:
                with Image.open(file) as img:
                    images.append(np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img))
            except (OSError, ValueError, Image.DecompressionBombError) as err:  # UnidentifiedImageError is an OSError
                raise ValueError(f"{file} is not a readable image ({err}); remove it or replace it with a "
                                 ".png/.jpg image") from None
            labels.append(label)
    if not images:
        raise ValueError(f"no .png/.jpg images under {base}")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images under {base} have different shapes (height, width[, channels]) {sorted(shapes)[:3]}; "
                         "give them one size and one colour mode (all RGB or all grayscale) first")
    arr = np.stack(images)
    arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
    return ImageData(torch.from_numpy(np.ascontiguousarray(arr)), torch.tensor(labels), tuple(classes))


def check_splits(train: ImageData, test: ImageData, root: str | Path = "") -> None:
    """Refuse a test split whose labels would not mean the training split's classes: other class names (an
    image folder's test split with other class folders would shift every label), labels beyond the
    training classes, or images of another shape."""
    where = f" under {root}" if str(root) else ""
    if len(train.classes) < 2:
        raise ValueError(f"the training split{where} has {len(train.classes)} class ({', '.join(train.classes)}); "
                         "contrastive training needs at least 2 classes: give data with two or more classes")
    if test.classes != train.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        detail = (f"only in train: {only_train[:5]}, only in test: {only_test[:5]}" if only_train or only_test
                  else "same names in another order")
        raise ValueError(f"the test split{where} has other classes than the training split ({detail}); labels are "
                         "numbered by class name, so both splits need the same class folders")
    if len(test.labels) and (int(test.labels.min()) < 0 or int(test.labels.max()) >= len(train.classes)):
        raise ValueError(f"the test split{where} has labels outside 0..{len(train.classes) - 1}, the training "
                         "split's classes; use matching train and test files")
    if tuple(test.images.shape[1:]) != tuple(train.images.shape[1:]):
        raise ValueError(f"test images{where} are {list(test.images.shape[1:])} but training images are "
                         f"{list(train.images.shape[1:])} (channels, height, width); give both splits one size")


def _read_idx(path: Path, magic: int) -> np.ndarray:
    candidates = [path, path.with_name(path.name + ".gz")]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise _missing(path, "IDX file", "install Debian's dataset-fashion-mnist package or download the IDX files")
    try:
        raw = gzip.decompress(found.read_bytes()) if found.suffix == ".gz" else found.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise ValueError(f"{found} is not a readable gzip file ({err}); download it again") from None
    header = 16 if magic == 2051 else 8
    if len(raw) < header:
        raise ValueError(f"{found} has {len(raw)} bytes, fewer than the {header}-byte IDX header: it is empty or "
                         "truncated; download it again")
    got, count = struct.unpack(">II", raw[:8])
    if got != magic:
        raise ValueError(f"{found} has magic number {got}, expected {magic}: not an IDX {'image' if magic == 2051 else 'label'} file")
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        data = np.frombuffer(raw, dtype=np.uint8, offset=16)
        if data.size != count * rows * cols:
            raise ValueError(f"{found} is truncated: {data.size} bytes of pixels for {count} images of {rows} x {cols}")
        return data.reshape(count, 1, rows, cols)
    data = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if data.size != count:
        raise ValueError(f"{found} is truncated: {data.size} labels, header says {count}")
    return data


def load_idx(root: str | Path, split: str = "train", classes: tuple[str, ...] | None = None) -> ImageData:
    """MNIST / Fashion-MNIST from ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` under ``root``."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be train or test, got {split!r}")
    root = Path(root)
    images = _read_idx(root / f"{prefix}-images-idx3-ubyte", 2051)
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte", 2049)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels under {root}")
    if len(labels) == 0:
        raise ValueError(f"the {split} IDX files under {root} hold no images (their headers say 0); download them again")
    labels_t = torch.from_numpy(labels.astype(np.int64))
    names = classes or tuple(str(c) for c in range(int(labels_t.max()) + 1))
    return ImageData(torch.from_numpy(images.copy()), labels_t, names)


def imbalanced_subset(labels: torch.Tensor, counts, seed: int = 0, field: str = "n_major",
                      split: str = "training") -> torch.Tensor:
    """Indices of a seeded subset with ``counts[c]`` samples of class c (e.g. from ``ufm.imbalance.step_counts``),
    sorted; each class's samples are a seeded random choice among its members.  ``field``: the config field that
    sets the counts (named when a class has too few samples of the ``split``)."""
    counts = torch.as_tensor(counts, dtype=torch.long)
    available = torch.bincount(labels, minlength=len(counts))
    if len(available) != len(counts):
        raise ValueError(f"{len(counts)} counts given but the labels have {len(available)} classes")
    short = torch.nonzero(counts > available).flatten().tolist()
    if short:
        raise FieldError(f"classes {short} have fewer samples ({available[short].tolist()}) in the {split} split "
                         f"than asked ({counts[short].tolist()}); lower {{{field}}}")
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(len(counts)):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=gen)[: int(counts[c])]])
    return torch.sort(torch.cat(chosen)).values
