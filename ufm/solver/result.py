"""The result of every solver method, with the same typed fields whatever the method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ufm.choices import JSON_MATRIX_MAX_K

__all__ = ["SolveResult", "FullSolveResult", "JSON_MATRIX_MAX_K", "ARRAYS_FILE", "ENTRY_TOL", "PRINT_TOL"]

ENTRY_TOL = 1e-6  # "optimal" promises every reported entry within this of the optimum (by the entry-accuracy estimate)
PRINT_TOL = 1e-3  # an answer whose entry bound exceeds this (or that has none) is a failure, never a printed geometry
# JSON_MATRIX_MAX_K (ufm.choices): matrices go into JSON summaries as lists up to this order; always into ARRAYS_FILE
ARRAYS_FILE = "arrays.npz"  # where `ufm solve` and the sweep points write the matrices


@dataclass(frozen=True)
class SolveResult:
    """Optimal class-mean Gram ``gram [k, k]`` (``[N, N]`` for the full solve), cross-Gram ``cross`` =
    [mu_a . w_c] (or None without prototypes) and the objective (the batch-set loss, not normalized).

    - ``status``: "optimal" when the certificate and the residuals hold and every entry is estimated within
      :data:`ENTRY_TOL` of the optimum (``entry_accuracy``), else "optimal_inaccurate" (the certified gap bounds
      the objective, not the entries: at large n_w a gap of 1e-10 of the objective leaves the class means free);
    - ``method``: "grouped" (symmetry-reduced), "interior" (collapsed, interior point), "bm"
      (Burer-Monteiro) or "full" (N x N); ``solver``: CLARABEL, SCS or BM;
    - ``iterations``: interior-point (or L-BFGS) iterations; ``newton_iterations``: of the polish (0: none);
    - ``min_eigenvalue`` of the joint Gram [[M, X], [X^T, G_*]] and ``max_diag_error`` = max |M_aa - 1|;
    - ``certified_gap``: a proven bound on objective - optimum (weak duality), ``relative_gap`` the same
      over |objective|; None where no certificate is computed (the ReLU relaxation, the full solve);
    - ``entry_accuracy``: estimated bound on max |reported entry - optimal entry|, and ``accuracy_source``:
      "newton" (size of one more Newton correction of the KKT system, after quadratic convergence),
      "restarts" (largest entry difference between Burer-Monteiro restarts: empirical) or "none";
    - ``note``: why a polish was not accepted, or other caveats ("" if none);
    - ``groups``: sizes of the groups of equal-count classes (grouped method), else None;
    - times in seconds: ``compile_s`` (building the program; cvxpy compilation for the full solve), ``solve_s``
      (the interior-point or L-BFGS solve, cvxpy canonicalization included), ``polish_s`` (Newton and certificate).
    """

    gram: np.ndarray
    cross: np.ndarray | None
    objective: float
    status: str
    method: str
    solver: str
    iterations: int
    newton_iterations: int
    min_eigenvalue: float
    max_diag_error: float
    certified_gap: float | None
    relative_gap: float | None
    entry_accuracy: float | None
    accuracy_source: str
    note: str
    groups: tuple[int, ...] | None
    compile_s: float
    solve_s: float
    polish_s: float

    def __post_init__(self) -> None:
        """Downgrade "optimal" to "optimal_inaccurate" when the entries are not estimated within ENTRY_TOL."""
        acc = self.entry_accuracy
        if self.status == "optimal" and (acc is None or not np.isfinite(acc) or acc > ENTRY_TOL):
            why = ("entries not certified: no entry-accuracy estimate" if acc is None or not np.isfinite(acc)
                   else f"entries not certified: accurate only to {acc:.1e} (> {ENTRY_TOL:g})")
            object.__setattr__(self, "status", "optimal_inaccurate")
            object.__setattr__(self, "note", f"{self.note}; {why}" if self.note else why)

    def unbounded(self, tol: float = PRINT_TOL) -> str | None:
        """Why this answer may not be printed as a geometry (no entry bound, or one above ``tol``), else None."""
        acc = self.entry_accuracy
        if acc is None or not np.isfinite(acc):
            return f"no entry bound ({self.note or self.status})"
        if acc > tol:
            return f"entries bounded only to {acc:.1e} (> {tol:g})"
        return None

    @property
    def total_s(self) -> float:
        return self.compile_s + self.solve_s + self.polish_s

    def diagnostics(self) -> dict:
        """Every field but the matrices (JSON-ready)."""
        return {
            "objective": self.objective, "status": self.status, "method": self.method, "solver": self.solver,
            "iterations": self.iterations, "newton_iterations": self.newton_iterations,
            "min_eigenvalue": self.min_eigenvalue, "max_diag_error": self.max_diag_error,
            "certified_gap": self.certified_gap, "relative_gap": self.relative_gap,
            "entry_accuracy": self.entry_accuracy, "accuracy_source": self.accuracy_source, "note": self.note,
            "groups": None if self.groups is None else list(self.groups),
            "compile_s": self.compile_s, "solve_s": self.solve_s, "polish_s": self.polish_s, "total_s": self.total_s,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The matrices, for an ``.npz`` file: ``gram`` and ``cross`` (when there are prototypes)."""
        return {"gram": np.asarray(self.gram)} | ({} if self.cross is None else {"cross": np.asarray(self.cross)})

    def summary(self, max_k: int = JSON_MATRIX_MAX_K) -> dict:
        """:meth:`diagnostics` with ``gram`` and ``cross`` as lists when the matrix order is at most ``max_k``
        (else None: a 1000 x 1000 matrix is 30 MB of JSON; write :meth:`arrays` to an ``.npz`` instead), and
        ``arrays``: the name of the ``.npz`` file that `ufm solve` and the sweep points write them to."""
        small = len(self.gram) <= max_k
        return {**self.diagnostics(), "gram": self.gram.tolist() if small else None,
                "cross": None if self.cross is None or not small else self.cross.tolist(), "arrays": ARRAYS_FILE}

    def describe(self) -> str:
        """One line with every diagnostic (what the CLI prints under the table)."""
        def num(v, fmt):
            return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

        acc = f"entries accurate to {num(self.entry_accuracy, '.1e')} ({self.accuracy_source})"
        gap = f"certified gap {num(self.certified_gap, '.2e')} ({num(self.relative_gap, '.1e')} relative)"
        text = (f"{self.method} ({self.solver}): {self.status}, objective {self.objective:.10g}, {gap}, {acc}, "
                f"min eigenvalue {self.min_eigenvalue:.1e}, max |diag - 1| {self.max_diag_error:.1e}, "
                f"{self.iterations} iterations + {self.newton_iterations} Newton, "
                f"{self.solve_s:.3f} s solve + {self.polish_s:.3f} s polish")
        if self.groups is not None:
            text += f", groups {list(self.groups)}"
        return text + (f"; note: {self.note}" if self.note else "")


@dataclass(frozen=True)
class FullSolveResult(SolveResult):
    """A full (uncollapsed) solve: ``gram [N, N]``, ``cross [N, k]``, plus whether the classes collapse:
    ``class_means [k, k]`` (G_M, the normalized class means) and ``within_class_min [k]`` (the smallest
    cosine between two samples of each class; 1 for a class that collapses, 1 for a single-sample class)."""

    class_means: np.ndarray | None = None
    within_class_min: np.ndarray | None = None

    @property
    def min_within_class_cosine(self) -> float:
        return float(np.nanmin(self.within_class_min))

    def diagnostics(self) -> dict:
        return {**super().diagnostics(), "min_within_class_cosine": self.min_within_class_cosine,
                "within_class_min_cosines": np.asarray(self.within_class_min).tolist()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "class_means": np.asarray(self.class_means),
                "within_class_min": np.asarray(self.within_class_min)}

    def summary(self, max_k: int = JSON_MATRIX_MAX_K) -> dict:
        means = np.asarray(self.class_means)
        return {**super().summary(max_k), "class_means": means.tolist() if len(means) <= max_k else None}

    def describe(self) -> str:
        return super().describe() + f"; smallest within-class cosine {self.min_within_class_cosine:.8f}"
