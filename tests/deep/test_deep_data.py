import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from _images import write_cifar10
from ufm.deep.augment import crop_flip, normalize, two_views
from ufm.deep.data import ImageData, imbalanced_subset, load_cifar, load_idx, load_image_folder
from ufm.imbalance import step_counts



def test_cifar10_python_format(tmp_path):
    last_data, last_labels = write_cifar10(tmp_path)
    train = load_cifar(tmp_path, "cifar10", "train")
    test = load_cifar(tmp_path, "cifar10", "test")
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (6, 3, 32, 32) and test.labels.tolist() == last_labels
    # row-major 3072 = 3 channels x 32 x 32, as the official format stores it
    assert torch.equal(test.images[0, 1, 0], torch.from_numpy(last_data[0, 1024:1056]))
    assert train.classes[3] == "class3"


def test_cifar100_python_format(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    for split, n in (("train", 8), ("test", 4)):
        with open(base / split, "wb") as f:
            pickle.dump({b"data": np.zeros((n, 3072), dtype=np.uint8), b"fine_labels": list(range(n)),
                         b"coarse_labels": [0] * n}, f)
    with open(base / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f)
    train = load_cifar(tmp_path, "cifar100", "train")
    assert len(train.images) == 8 and train.labels.tolist() == list(range(8)) and len(train.classes) == 100


def test_missing_or_corrupt_cifar_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_cifar"):
        load_cifar(tmp_path / "nowhere")
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    (base / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR python-format batch"):
        load_cifar(tmp_path)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for cls, n in (("cat", 3), ("dog", 2)):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    data = load_image_folder(tmp_path, "train")
    assert data.images.shape == (5, 3, 8, 8) and data.classes == ("cat", "dog")
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    first = np.asarray(Image.open(tmp_path / "train" / "cat" / "0.png"))
    assert torch.equal(data.images[0], torch.from_numpy(first.transpose(2, 0, 1).copy()))
    with pytest.raises(FileNotFoundError, match="image folder"):
        load_image_folder(tmp_path, "val")


def write_idx(path, array, magic, gz):
    header = struct.pack(">II", magic, len(array)) + (struct.pack(">II", *array.shape[1:]) if magic == 2051 else b"")
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files(tmp_path, gz):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (7, 28, 28))
    labels = rng.integers(0, 10, 7)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, 2051, gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, 2049, gz)
    data = load_idx(tmp_path, "test")
    assert data.images.shape == (7, 1, 28, 28)
    assert torch.equal(data.images[:, 0], torch.from_numpy(images.astype(np.uint8)))
    assert data.labels.tolist() == labels.tolist()
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_idx(tmp_path, "train")
    write_idx(tmp_path / "train-images-idx3-ubyte", images, 2049, False)
    with pytest.raises(ValueError, match="magic number"):
        load_idx(tmp_path, "train")


def test_imbalanced_subset_counts_and_seed():
    labels = torch.arange(10).repeat(50)
    counts = step_counts(10, 40, 10)
    index = imbalanced_subset(labels, counts, seed=3)
    assert torch.bincount(labels[index]).tolist() == counts.tolist()
    assert torch.equal(index, imbalanced_subset(labels, counts, seed=3))
    assert not torch.equal(index, imbalanced_subset(labels, counts, seed=4))
    with pytest.raises(ValueError, match="fewer samples"):
        imbalanced_subset(labels, step_counts(10, 60, 10))


def test_crop_flip_is_per_image_random_yet_seeded_and_crops_windows():
    x = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32).view(4, 3, 8, 8)
    x = x.repeat(8, 1, 1, 1)  # 32 identical-looking groups
    a = crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    b = crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a[0], a[4])  # same image, different draws
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(8):  # every output is a window of the padded image, maybe mirrored
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(a[i], wdw) or torch.equal(a[i], wdw.flip(-1)) for wdw in windows)
    raw = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    u8 = crop_flip(raw, torch.Generator().manual_seed(1))  # uint8 in, uint8 out, the same pixels as in float
    assert u8.dtype == torch.uint8 and torch.equal(u8.float(), crop_flip(raw.float(), torch.Generator().manual_seed(1)))
    views = two_views(x[:4], torch.Generator().manual_seed(2))
    assert views.shape == (8, 3, 8, 8)
    z = normalize(torch.full((1, 3, 2, 2), 128, dtype=torch.uint8), (128.0, 128.0, 128.0), (64.0, 64.0, 64.0))
    assert torch.all(z == 0)


def test_image_data_checks():
    with pytest.raises(ValueError, match="uint8"):
        ImageData(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), ())
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        ImageData(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ())


def test_supcon_augmentation_shapes_ranges_and_seeding():
    from ufm.deep.augment import supcon_augment

    x = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    a = supcon_augment(x, torch.Generator().manual_seed(0))
    b = supcon_augment(x, torch.Generator().manual_seed(0))
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.float32 and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 255
    same = x[:1].repeat(6, 1, 1, 1)
    out = supcon_augment(same, torch.Generator().manual_seed(1))
    assert not torch.allclose(out[0], out[1])  # per-image randomness
    gray = supcon_augment(same, torch.Generator().manual_seed(3), p_gray=1.0)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])


def test_download_checks_the_md5_and_extracts(tmp_path, monkeypatch):
    import hashlib
    import io
    import tarfile

    import ufm.deep.data as data

    write_cifar10(tmp_path / "src")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())  # as if already downloaded
    with pytest.raises(ValueError, match="corrupt"):
        data.download_cifar(root, "cifar10")
    url, _, folder = data.CIFAR_SOURCES["cifar10"]
    monkeypatch.setitem(data.CIFAR_SOURCES, "cifar10", (url, hashlib.md5(buffer.getvalue()).hexdigest(), folder))
    assert data.download_cifar(root, "cifar10") == root / "cifar-10-batches-py"
    assert len(load_cifar(root, "cifar10", "test").images) == 6


def test_files_that_are_not_what_they_claim_name_the_file(tmp_path):
    import os
    import pickle

    from PIL import Image

    # IDX: empty, a header cut short, a .gz that is not gzip
    for name, content in (("train-images-idx3-ubyte", b""), ("train-labels-idx1-ubyte", b"\x00\x00\x08")):
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte has 0 bytes, fewer than the 16-byte IDX header"):
        load_idx(tmp_path, "train")
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is not a readable gzip file"):
        load_idx(gz, "test")
    # an image folder with a .jpg that is not an image
    folder = tmp_path / "folder" / "train" / "cat"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(folder / "0.png")
    (folder / "1.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="1.jpg is not a readable image"):
        load_image_folder(tmp_path / "folder", "train")
    # CIFAR batches: random bytes, a pickled list, a dict with wrongly shaped data
    base = tmp_path / "c" / "cifar-10-batches-py"
    base.mkdir(parents=True)
    for content in (os.urandom(200), pickle.dumps([1, 2]),
                    pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})):
        (base / "data_batch_1").write_bytes(content)
        with pytest.raises(ValueError, match="data_batch_1 .*(not a CIFAR|download the data again)"):
            load_cifar(tmp_path / "c")


def _folder(root, split, classes, size=4):
    from PIL import Image

    for name in classes:
        path = root / split / name
        path.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((size, size, 3), 40 * i, dtype=np.uint8)).save(path / f"{i}.png")


def test_a_test_split_with_other_classes_is_refused_not_relabelled(tmp_path):
    from ufm.deep.config import TrainConfig
    from ufm.deep.train import load_data

    # test has "bird" where train has "ant": sorted, "cat" would be label 1 in train and label 1 in test, but
    # "bird" in test would take label 0, the label of "ant" in train -> silently wrong labels without the check
    _folder(tmp_path / "a", "train", ["ant", "cat"])
    _folder(tmp_path / "a", "test", ["bird", "cat"])
    cfg = TrainConfig(dataset="folder", data_root=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"other classes than the training split.*only in train: \['ant'\]"):
        load_data(cfg)
    _folder(tmp_path / "b", "train", ["ant", "cat"])
    _folder(tmp_path / "b", "test", ["ant", "cat"], size=6)
    with pytest.raises(ValueError, match=r"test images .* are \[3, 6, 6\] but training images are \[3, 4, 4\]"):
        load_data(TrainConfig(dataset="folder", data_root=str(tmp_path / "b")))
    _folder(tmp_path / "c", "train", ["ant", "cat"])
    _folder(tmp_path / "c", "test", ["ant", "cat"])
    train, test = load_data(TrainConfig(dataset="folder", data_root=str(tmp_path / "c")))
    assert train.classes == test.classes == ("ant", "cat")


def test_idx_test_labels_beyond_the_training_classes_are_refused():
    from ufm.deep.data import check_splits

    train = ImageData(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), ("0", "1"))
    check_splits(train, ImageData(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([1, 0]), ("0", "1")))
    with pytest.raises(ValueError, match="labels outside 0..1"):
        check_splits(train, ImageData(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([2, 0]), ("0", "1")))


def test_data_a_run_cannot_train_on_is_refused_by_name(tmp_path):
    """One class only, a class without training images, IDX files without images, grayscale and RGB mixed: each one
    line that names the data, never a traceback nor a run with perfect-looking numbers."""
    from PIL import Image

    from ufm.deep.config import TrainConfig
    from ufm.deep.train import load_data, select_data

    _folder(tmp_path / "one", "train", ["cat"])
    _folder(tmp_path / "one", "test", ["cat"])
    with pytest.raises(ValueError, match=r"has 1 class \(cat\); contrastive training needs at least 2 classes"):
        load_data(TrainConfig(dataset="folder", data_root=str(tmp_path / "one")))
    from typer.testing import CliRunner

    from ufm.cli.main import app

    result = CliRunner().invoke(app, ["train", "--dataset", "folder", "--data-root", str(tmp_path / "one"), "--out",
                                      str(tmp_path / "run")])
    # raised while the progress bar runs: still exactly one line, no blank line before it
    assert result.exit_code == 2 and result.output.splitlines() == [result.output.splitlines()[0]], result.output
    assert result.output.startswith("error: the training split") and not (tmp_path / "run").exists()
    # a hidden folder (.ipynb_checkpoints) is not a class
    _folder(tmp_path / "hidden", "train", ["ant", "cat", ".ipynb_checkpoints"])
    _folder(tmp_path / "hidden", "test", ["ant", "cat"])
    assert load_data(TrainConfig(dataset="folder", data_root=str(tmp_path / "hidden")))[0].classes == ("ant", "cat")
    # IDX labels 0 and 2 but no 1: class 1 has no training images (was "--n-major must be a positive integer, got 0")
    images = np.zeros((4, 4, 4))
    write_idx(tmp_path / "train-images-idx3-ubyte", images, 2051, False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 2, 0, 2]), 2049, False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, 2051, False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 0]), 2049, False)
    cfg = TrainConfig(dataset="idx", data_root=str(tmp_path), profile="balanced", test_per_class=1)
    with pytest.raises(ValueError, match=r"classes \['1'\] have no training images"):
        select_data(cfg, *load_data(cfg))
    empty = tmp_path / "empty"
    empty.mkdir()
    write_idx(empty / "train-images-idx3-ubyte", np.zeros((0, 4, 4)), 2051, False)
    write_idx(empty / "train-labels-idx1-ubyte", np.zeros(0), 2049, False)
    with pytest.raises(ValueError, match="hold no images"):
        load_idx(empty, "train")
    mixed = tmp_path / "mixed" / "train" / "cat"
    mixed.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(mixed / "rgb.png")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(mixed / "gray.png")
    with pytest.raises(ValueError, match="one size and one colour mode"):
        load_image_folder(tmp_path / "mixed", "train")


def test_download_keeps_extracted_data_and_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    import urllib.request

    import ufm.deep.data as data

    def offline(url, path):
        with open(path, "wb") as f:
            f.write(b"half an archive")
        raise OSError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    write_cifar10(tmp_path / "have")  # extracted data, no archive: nothing to fetch
    assert data.download_cifar(tmp_path / "have", "cifar10") == tmp_path / "have" / "cifar-10-batches-py"
    with pytest.raises(FileNotFoundError, match="could not download .* put it at"):
        data.download_cifar(tmp_path / "new" / "deeper", "cifar10")
    assert not (tmp_path / "new").exists()  # no empty folders, no truncated archive
    (tmp_path / "afile").write_text("x")
    for root in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(ValueError, match="cannot make the data folder"):
            data.download_cifar(root, "cifar10")
