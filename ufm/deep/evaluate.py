"""Evaluation of a trained embedding network: G_M through training, neural collapse and accuracies.

Everything runs on the model's device in eval mode, without augmentation; images are uint8
``[N, C, H, W]`` and the embeddings unit rows ``[N, d]``.  The measurements at each evaluation (:func:`measure`)
stream the embeddings batch by batch through :class:`ufm.nc_stream.NCAccumulator`, in memory independent of N
(the training set is embedded twice: NC4 and the training NCC accuracy compare each row with the class means of
the first pass).  The linear probe at the end of training fits on all training embeddings at once (full-batch
L-BFGS), so it alone holds them (:func:`embed`).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch

from ufm.analysis import class_means, gram_distance
from ufm.nc_stream import NCAccumulator

__all__ = ["Normalizer", "embed", "embedded", "measure", "evaluate", "evaluate_batches", "linear_probe",
           "probe_predictions", "per_class_accuracy", "shot_accuracies", "class_accuracies"]

Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]  # each call: (z [b, d], y [b]) of every row


class Normalizer:
    """uint8 images -> float (x - mean) / std per channel, with the constants made once on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], channels: int, device: torch.device,
                 channels_last: bool = False, dtype: torch.dtype = torch.float32) -> None:
        self.mean = torch.tensor(mean[:channels], device=device, dtype=dtype).view(1, -1, 1, 1)
        self.inv_std = 1 / torch.tensor(std[:channels], device=device, dtype=dtype).view(1, -1, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.to(self.mean.dtype) - self.mean) * self.inv_std).contiguous(memory_format=self.memory_format)


def embedded(model: torch.nn.Module, images: torch.Tensor, normalize: Normalizer, batch: int = 512,
             check: Callable[[], None] | None = None) -> Iterator[torch.Tensor]:
    """Unit embeddings of uint8 images, ``batch`` rows at a time in the images' order: ``[b, d]`` each, in the
    normalizer's dtype, eval mode, no augmentation.  ``check()`` before each batch (e.g.
    :func:`ufm.interrupt.check`: Ctrl-C lands during a long evaluation).  The model's mode is restored after each
    batch, so a loop that stops early leaves it as it was."""
    for s in range(0, len(images), batch):
        if check is not None:
            check()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                z = model(normalize(images[s : s + batch])).to(normalize.mean.dtype)
        finally:
            model.train(was_training)
        yield z


def embed(model: torch.nn.Module, images: torch.Tensor, normalize: Normalizer, batch: int = 512,
          check: Callable[[], None] | None = None) -> torch.Tensor:
    """All the unit embeddings of :func:`embedded` at once, ``[N, d]``."""
    return torch.cat(list(embedded(model, images, normalize, batch, check)))


def measure(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
            normalize: Normalizer, w: torch.Tensor, g_star: torch.Tensor, minority: torch.Tensor, batch: int = 512,
            check: Callable[[], None] | None = None) -> tuple[dict, dict]:
    """:func:`evaluate_batches` of the model's embeddings of ``train`` and ``test`` (uint8 images ``[N, C, H, W]``,
    labels ``[N]``), embedded ``batch`` at a time (:func:`embedded`) and never held whole."""
    def batches(images: torch.Tensor, labels: torch.Tensor) -> Batches:
        return lambda: zip(embedded(model, images, normalize, batch, check), labels.split(batch))

    return evaluate_batches(batches(*train), batches(*test), w, g_star, minority)


def evaluate(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor,
             w: torch.Tensor, g_star: torch.Tensor, minority: torch.Tensor) -> tuple[dict, dict]:
    """:func:`evaluate_batches` of unit embeddings held whole, ``z_*: [N, d]`` with labels ``y_*: [N]``."""
    return evaluate_batches(lambda: [(z_train, y_train)], lambda: [(z_test, y_test)], w, g_star, minority)


def evaluate_batches(train: Batches, test: Batches, w: torch.Tensor, g_star: torch.Tensor,
                     minority: torch.Tensor) -> tuple[dict, dict]:
    """``(metrics, grams)`` of unit embeddings that ``train()`` and ``test()`` yield as ``(z [b, d], y [b])``
    batches; ``train()`` is called twice and must give the same rows (memory independent of N).

    metrics: distance of G_M to G_* (and of the centred G_M), NC1, angles, the field's NC metrics of the training
    embeddings with the prototypes ``w`` as classifier (:meth:`ufm.nc_stream.NCAccumulator.nc_report`: nc1_ref,
    cdnv, nc2, nc3, nc4), and the accuracies of the nearest class centre (on the training set: the terminal-phase
    test; and on the test set) and of the nearest prototype.  grams: ``g_m`` and ``g_m_centered`` as float64
    ``[k, k]`` tensors.  Equal, to rounding, to the one-shot functions of :mod:`ufm.analysis` on all the rows.
    """
    stats = NCAccumulator(g_star.shape[-1])
    for z, y in train():
        stats.update(z, y)
    summary = {key: float(value) for key, value in stats.geometry_summary(g_star, minority).items()}
    grams = {"g_m": stats.mean_gram(), "g_m_centered": stats.mean_gram(center=True)}
    summary["distance_centered"] = float(gram_distance(grams["g_m_centered"], g_star))
    centers = torch.nn.functional.normalize(stats.class_means(), dim=-1)
    agreement, train_hits = stats.agreement(w), _Hits()
    for z, y in train():  # the second pass: each row against the class means
        agreement.update(z)
        train_hits.add(z @ centers.to(z).T, y)
    ncc, prototype = _Hits(), _Hits()
    for z, y in test():
        ncc.add(z @ centers.to(z).T, y)
        prototype.add(z @ w.to(z).T, y)
    metrics = {**summary, **stats.nc_report(w, agreement), "train_ncc_accuracy": train_hits.accuracy(),
               "ncc_accuracy": ncc.accuracy(), "prototype_accuracy": prototype.accuracy()}
    return metrics, grams


class _Hits:
    """Accuracy of argmax scores, counted batch by batch."""

    def __init__(self) -> None:
        self.hits = self.n = 0

    def add(self, scores: torch.Tensor, y: torch.Tensor) -> None:
        self.hits += int((scores.argmax(1) == y).sum())
        self.n += len(y)

    def accuracy(self) -> float:
        return self.hits / self.n if self.n else float("nan")


def linear_probe(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor,
                 num_classes: int) -> float:
    """Test accuracy of multinomial logistic regression fitted (L-BFGS) on frozen train embeddings."""
    return float((probe_predictions(z_train, y_train, z_test, num_classes) == y_test).float().mean())


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy within each class ``[k]`` (NaN for a class without test samples) of predictions ``[N]``."""
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes).double()
    totals = torch.bincount(labels, minlength=num_classes).double()
    return (hits / totals).tolist()


def class_accuracies(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor,
                   w: torch.Tensor, probe: torch.Tensor) -> dict[str, list[float]]:
    """Test accuracy of every class ``[k]`` by nearest class centre, nearest prototype (``w [k, d]``) and the linear
    probe (its test predictions ``probe [N_test]``, :func:`probe_predictions`)."""
    num_classes = w.shape[0]
    centers = torch.nn.functional.normalize(class_means(z_train, y_train, num_classes), dim=-1)
    predictions = {"ncc": torch.argmax(z_test @ centers.T, 1),
                   "prototype": torch.argmax(z_test @ w.to(z_test.dtype).T, 1), "probe": probe}
    return {name: per_class_accuracy(pred, y_test, num_classes) for name, pred in predictions.items()}


def probe_predictions(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor,
                      num_classes: int) -> torch.Tensor:
    """Test predictions ``[N_test]`` of multinomial logistic regression fitted (L-BFGS, weight decay 1e-4) on frozen
    train embeddings."""
    probe = torch.nn.Linear(z_train.shape[1], num_classes).to(z_train.device, z_train.dtype)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(z_train), y_train) + 1e-4 * probe.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return probe(z_test).argmax(1)


def shot_accuracies(per_class: dict[str, list[float]], counts) -> dict[str, dict[str, float]]:
    """Test accuracy over the many-, medium- and few-shot classes (:func:`ufm.imbalance.shot_groups` of the training
    ``counts``), per classifier of ``per_class`` (:func:`class_accuracies`): the mean of the classes' accuracies (the
    accuracy over the group's test images when the test set is balanced); a group without classes is left out."""
    from ufm.imbalance import SHOTS, shot_groups

    groups = shot_groups(counts)
    out = {}
    for name, accuracies in per_class.items():
        out[name] = {g: sum(a for a, h in zip(accuracies, groups) if h == g) / groups.count(g)
                     for g in SHOTS if g in groups}
    return out
