"""Neural-collapse statistics accumulated batch by batch, in memory independent of the number of samples N.

:class:`NCAccumulator` takes batches ``(h [b, d], y [b])`` (torch tensors on any device, float32 or float64) and
keeps, in float64 on the first batch's device (the CPU for Apple's MPS, which has no float64):

- ``counts [k]``: n_c, the samples of each class;
- ``means [k, d]``: mu_c, the running class means;
- ``m2 [k]``: sum over class c of ||h_i - mu_c||^2 (the class's scatter trace; var_c = m2_c / n_c);
- ``scatter [d, d]``: the within-class scatter S_W = sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T, summed over the
  classes (one d x d matrix, never one per class); Sigma_W = S_W / N.

That is (2k + k d + d^2) float64 numbers: 6.2 MB for k = 1000 classes in d = 512, whatever N.  A batch is merged by
Chan, Golub & LeVeque's pairwise update (no raw sums of squares, so a large common offset costs no accuracy): with
the batch's class counts m_c, means nu_c and scatters S_c about nu_c, and delta_c = nu_c - mu_c,
S_W += sum_c S_c + sum_c (n_c m_c / (n_c + m_c)) delta_c delta_c^T, m2_c += tr S_c + (n_c m_c / (n_c + m_c))
||delta_c||^2, mu_c += delta_c m_c / (n_c + m_c), n_c += m_c.  A batch costs O(b d^2 + b k + m d^2) for its m classes.

Everything :mod:`ufm.analysis` measures follows from these, equal to its one-shot functions to rounding
(``tests/test_nc_stream.py``: 1e-10 in float64): :meth:`~NCAccumulator.class_means`,
:meth:`~NCAccumulator.mean_gram` (G_M), :meth:`~NCAccumulator.gram_distance` (to G_*), :meth:`~NCAccumulator.nc1`
(Papyan's ratio about the mean of all rows, :func:`ufm.analysis.nc1`), :meth:`~NCAccumulator.geometry_summary` and
:meth:`~NCAccumulator.nc_metrics` (nc1, cdnv, nc2, nc3 of :func:`ufm.analysis.nc_metrics`).  NC4 compares each
row's nearest class centre with the classifier, so it needs the means first: a second pass over the rows,
:meth:`NCAccumulator.agreement` (as rhubarbwu/neural-collapse, which also runs a means pass and then a second one).
:func:`stream_nc_metrics` runs both passes over a re-iterable source of batches.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from ufm.analysis import NC_REPORT_KEYS, _cdnv_of, _etf_structure_error, _spread_ratio, _square_distances, _summary_of
from ufm.analysis import gram_distance

__all__ = ["NCAccumulator", "NCAgreement", "stream_nc_metrics"]


def _check_rows(h: torch.Tensor, d: int | None) -> None:
    """Refuse a batch that is not a floating ``h [b, d]`` (with the earlier batches' d)."""
    if not isinstance(h, torch.Tensor) or not h.is_floating_point() or h.dim() != 2:
        got = f"shape {tuple(h.shape)}, dtype {h.dtype}" if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(f"a batch of embeddings h must be a floating tensor [b, d], got {got}")
    if d is not None and h.shape[1] != d:
        raise ValueError(f"this batch has embedding dimension {h.shape[1]}, the earlier ones {d}: every batch must "
                         "have the same d")


def _check_labels(y: torch.Tensor, b: int, k: int) -> None:
    """Refuse labels that are not integers ``y [b]`` in [0, k)."""
    if (not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool
            or tuple(y.shape) != (b,)):
        got = f"shape {tuple(y.shape)}, dtype {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"labels y must be an integer tensor [b] = [{b}] (one per row of h), got {got}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k}), found range [{int(y.min())}, {int(y.max())}]")


class NCAccumulator:
    """Class statistics of ``k`` classes from batches of embeddings (see the module docstring for the state, its
    memory and the update).  ``update(h, y)`` for each batch, then read any measure; reading does not end the
    accumulation."""

    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"the number of classes k must be a positive integer, got {k!r}")
        self.k = k
        self.d: int | None = None
        self._counts = self._means = self._m2 = self._scatter = None

    def update(self, h: torch.Tensor, y: torch.Tensor) -> "NCAccumulator":
        """Add the rows ``h [b, d]`` with labels ``y [b]``; returns ``self``."""
        _check_rows(h, self.d)
        _check_labels(y, h.shape[0], self.k)
        if self.d is None:
            self._start(h)
        h = h.detach().to(self._counts.device, torch.float64)
        y = y.to(h.device).long()
        if not len(y):
            return self
        onehot = F.one_hot(y, self.k).to(h.dtype)  # [b, k]
        batch_counts = onehot.sum(0)
        idx = torch.nonzero(batch_counts).squeeze(1)  # the m classes in this batch
        onehot, m = onehot[:, idx], batch_counts[idx]
        nu = (onehot.T @ h) / m.unsqueeze(1)  # [m, d]: the batch's class means
        dev = h - onehot @ nu  # [b, d]
        n = self._counts[idx]
        delta = nu - self._means[idx]
        coef = n * m / (n + m)
        self._scatter += dev.T @ dev + (delta * coef.unsqueeze(1)).T @ delta
        self._m2[idx] += onehot.T @ dev.square().sum(1) + coef * delta.square().sum(1)
        self._means[idx] += delta * (m / (n + m)).unsqueeze(1)
        self._counts[idx] += m
        return self

    def _start(self, h: torch.Tensor) -> None:
        self.d = h.shape[1]
        device = torch.device("cpu") if h.device.type == "mps" else h.device
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.float64, device=device)  # noqa: E731
        self._counts, self._means, self._m2, self._scatter = zeros(self.k), zeros(self.k, self.d), zeros(self.k), \
            zeros(self.d, self.d)

    # ------------------------------------------------------------------------------------------ the state

    @property
    def n(self) -> int:
        """The number of rows seen."""
        return 0 if self._counts is None else int(self._counts.sum())

    @property
    def counts(self) -> torch.Tensor:
        """n_c, ``[k]`` int64 (zeros before the first batch)."""
        if self._counts is None:
            return torch.zeros(self.k, dtype=torch.long)
        return self._counts.long()

    @property
    def scatter(self) -> torch.Tensor:
        """S_W, the within-class scatter summed over classes, ``[d, d]`` float64 (Sigma_W = S_W / N)."""
        self._check_full()
        return self._scatter

    @property
    def variances(self) -> torch.Tensor:
        """var_c = mean over class c of ||h - mu_c||^2, ``[k]`` float64."""
        self._check_full()
        return self._m2 / self._counts

    def _check_full(self) -> None:
        """Refuse to measure while some class has no sample (as :func:`ufm.analysis.class_means` does)."""
        if self._counts is None:
            raise ValueError("no batch was added: call update(h, y) with the embeddings first")
        if bool((self._counts == 0).any()):
            empty = torch.nonzero(self._counts == 0).flatten().tolist()
            raise ValueError(f"classes {empty} have no samples: their class means are undefined")

    # ------------------------------------------------------------------------------------------ measures

    def class_means(self, center: bool = False) -> torch.Tensor:
        """mu_c, ``[k, d]`` float64; ``center`` subtracts their plain average (:func:`ufm.analysis.class_means`)."""
        self._check_full()
        return self._means - self._means.mean(0, keepdim=True) if center else self._means.clone()

    def mean_gram(self, center: bool = False) -> torch.Tensor:
        """G_M, the Gram of the normalized class means, ``[k, k]`` (:func:`ufm.analysis.mean_gram`)."""
        m = F.normalize(self.class_means(center), dim=-1)
        return m @ m.T

    def gram_distance(self, g_star: torch.Tensor, center: bool = False) -> torch.Tensor:
        """Distance of G_M to ``g_star [k, k]``, ``[]`` (:func:`ufm.analysis.gram_distance`)."""
        return gram_distance(self.mean_gram(center), g_star)

    def _ratio(self, between: torch.Tensor) -> torch.Tensor:
        """tr(Sigma_W Sigma_B^+) / k with Sigma_B from ``between [k, d]``, Sigma_W = S_W / N."""
        n = self._counts.sum()
        return _spread_ratio(between, lambda vh: ((vh @ self._scatter) * vh).sum(-1) / n)

    def nc1(self) -> torch.Tensor:
        """NC1 with Sigma_B about the mean of all rows, ``[]`` (:func:`ufm.analysis.nc1`)."""
        mu = self.class_means()
        overall = (self._counts @ mu) / self._counts.sum()
        return self._ratio(mu - overall)

    def geometry_summary(self, g_star: torch.Tensor, minority: torch.Tensor,
                         center: bool = False) -> dict[str, torch.Tensor]:
        """The numbers of :func:`ufm.analysis.geometry_summary`: distance, NC1, worst angle error, group angles."""
        g_star = torch.as_tensor(g_star, dtype=torch.float64, device=self._device())
        return _summary_of(self.mean_gram(center), self.nc1(), g_star, minority)

    def nc_metrics(self, prototypes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``nc1``, ``cdnv``, ``nc2`` and, with ``prototypes [k, d]``, ``nc3``, each ``[]``, as
        :func:`ufm.analysis.nc_metrics` (mu_G the unweighted mean of the class means); ``nc4`` needs a second
        pass: :meth:`agreement`."""
        if self.k < 2:
            raise ValueError(f"the NC metrics compare classes: they need k >= 2 classes, got k = {self.k}")
        mu = self.class_means()
        centred = mu - mu.mean(0, keepdim=True)
        out = {"nc1": self._ratio(centred), "cdnv": _cdnv_of(self.variances, mu),
               "nc2": _etf_structure_error(centred, centred)}
        if prototypes is not None:
            out["nc3"] = _etf_structure_error(centred, self._classifier(prototypes))
        return out

    def nc_report(self, prototypes: torch.Tensor | None = None,
                  agreement: "NCAgreement | None" = None) -> dict[str, float]:
        """:meth:`nc_metrics` (and ``nc4`` from a finished second pass ``agreement``) under the names of
        :func:`ufm.analysis.nc_report` (``nc1_ref``, ``cdnv``, ...); empty for k < 2."""
        if self.k < 2:
            return {}
        out = {NC_REPORT_KEYS[name]: float(value) for name, value in self.nc_metrics(prototypes).items()}
        if agreement is not None:
            out["nc4"] = float(agreement.value())
        return out

    def agreement(self, prototypes: torch.Tensor) -> "NCAgreement":
        """The second pass of NC4 with the classifier ``prototypes [k, d]``: feed it the same rows again."""
        return NCAgreement(self.class_means(), self._classifier(prototypes))

    def _classifier(self, prototypes: torch.Tensor) -> torch.Tensor:
        w = torch.as_tensor(prototypes).to(self._device(), torch.float64)
        if tuple(w.shape) != (self.k, self.d):
            raise ValueError(f"prototypes must be [k, d] = [{self.k}, {self.d}] (one row per class), got "
                             f"{list(w.shape)}")
        return w

    def _device(self) -> torch.device:
        self._check_full()
        return self._counts.device


class NCAgreement:
    """NC4 by a second pass: the fraction of rows whose nearest class centre argmin_c ||h - mu_c|| is the
    classifier's argmax_c <w_c, h> (:func:`ufm.analysis.nc_metrics`), from ``means [k, d]`` and ``w [k, d]``
    (float64, as :meth:`NCAccumulator.agreement` makes them).  State: two counts."""

    def __init__(self, means: torch.Tensor, w: torch.Tensor) -> None:
        self.means, self.w = means, w
        self.agree = self.n = 0

    def update(self, h: torch.Tensor) -> "NCAgreement":
        """Count the rows of ``h [b, d]`` (the first pass's rows, in any batching); returns ``self``."""
        _check_rows(h, self.means.shape[1])
        h = h.detach().to(self.means.device, torch.float64)
        ncc = _square_distances(h, self.means).argmin(-1)
        self.agree += int((ncc == (h @ self.w.T).argmax(-1)).sum())
        self.n += len(h)
        return self

    def value(self) -> torch.Tensor:
        """NC4, ``[]`` float64 (1 = full agreement)."""
        if self.n == 0:
            raise ValueError("the NC4 pass saw no rows: call update(h) with the embeddings again")
        return torch.tensor(self.agree / self.n, dtype=torch.float64)


def stream_nc_metrics(batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]], k: int,
                      prototypes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """:func:`ufm.analysis.nc_metrics` of the rows that ``batches()`` yields as ``(h [b, d], y [b])`` pairs,
    in memory independent of N: one pass, and a second one (``batches()`` called again, the same rows) for
    ``nc4`` when ``prototypes [k, d]`` are given."""
    stats = NCAccumulator(k)
    for h, y in batches():
        stats.update(h, y)
    out = stats.nc_metrics(prototypes)
    if prototypes is not None:
        second = stats.agreement(prototypes)
        for h, _ in batches():
            second.update(h)
        if second.n != stats.n:
            raise ValueError(f"the second pass of batches() gave {second.n} rows, the first {stats.n}: batches() "
                             "must yield the same rows each time it is called")
        out["nc4"] = second.value()
    return out
