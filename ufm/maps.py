"""What prototypes buy: how far the optimal class-mean Gram G_M stays from the target G_*, over the
settings a user chooses (imbalance ratio R, temperature tau, copies n_w), and how many copies are needed.

Everything here reads the certified optimum of the collapsed problem (:func:`ufm.solver.solve`) and
measures it with the normalized Frobenius distance of :func:`ufm.analysis.gram_distance`,

    d(n_w) = || G_M(n_w) / ||G_M||_F - G_* / ||G_*||_F ||_F,

where G_M(n_w) is the optimal Gram of the unit class means for the given batch compositions, tau,
prototype Gram G_w (= G_* unless said otherwise) and n_w copies of each prototype per batch (copies are
multiplicities, so any real n_w >= 0 is meaningful).  The solver is only reached through
:func:`_solve_point`, the one adapter to its result type.

Maps: a :class:`MapCell` is one solve; :func:`distance_map` maps cells in memory, :func:`run_map` runs them
as a resumable sweep of kind ``map`` on any executor (:mod:`ufm.sweep`, :mod:`ufm.executors`).  Batching:
:func:`batching_curves` measures the same distance from the simulator for full, reshuffled and bound
batches over seeds, beside the full-batch optimum.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ufm.errors import FieldError
from ufm._config import option as _opt
from ufm.analysis import gram_distance
from ufm.geometry import check_gram, make_gram
from ufm.imbalance import class_counts
from ufm.losses import check_copies
from ufm.sweep import Kind, plan, register_kind, run_sweep

__all__ = [
    "SolvePoint",
    "CopiesResult",
    "solve_point",
    "minimal_copies",
    "MapCell",
    "map_cells",
    "distance_cell",
    "distance_map",
    "run_map",
    "batching_curves",
    "render_map",
    "block_gram",
    "best_block_prototypes",
]


@dataclass(frozen=True)
class SolvePoint:
    """One certified solve: the optimal G_M's distance to the target and how the solve was certified.

    ``certified_gap`` bounds objective(solution) - optimum (weak duality, :func:`ufm.solver.certify`);
    ``relative_gap`` is that bound over |objective|."""

    n_w: float
    distance: float
    status: str
    solver: str
    objective: float
    certified_gap: float | None
    relative_gap: float | None
    gram: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("gram")
        return out


def _solve_point(compositions: np.ndarray, tau: float, g_w: np.ndarray | None, n_w: float,
                 prototype_anchors: bool, solver: str) -> tuple[np.ndarray, float, str, str, float | None, float | None]:
    """The only place that touches the solver's result type: (gram [k, k], objective, status, solver name,
    certified gap, relative gap).  The gap is the result's own certificate when it carries one, else the
    weak-duality certificate of :func:`ufm.solver.certify` computed here on the returned solution."""
    from ufm.solver import certify, solve

    result = solve(compositions, tau, g_w, n_w, prototype_anchors, solver)
    gram = np.asarray(result.gram, dtype=float)
    gap, relative = result.certified_gap, result.relative_gap
    if gap is None:
        certificate = certify(gram, result.cross, compositions, tau, g_w, n_w, prototype_anchors)
        gap, relative = certificate.get("certified_gap"), certificate.get("relative_gap")
    return gram, float(result.objective), str(result.status), str(result.solver), gap, relative


def _distance(gram: np.ndarray, g_star: np.ndarray) -> float:
    return float(gram_distance(torch.from_numpy(gram), torch.from_numpy(g_star)))


def _compositions(counts_or_compositions) -> np.ndarray:
    comp = np.asarray(counts_or_compositions)
    if comp.ndim == 1:
        comp = comp[None]
    if comp.ndim != 2 or comp.shape[1] < 2:
        raise ValueError(f"counts must be [k >= 2] class counts or [num_batches, k] compositions, got shape {comp.shape}")
    return comp


def solve_point(
    counts,
    tau: float,
    g_star,
    n_w: float,
    prototype_anchors: bool = True,
    g_w=None,
    solver: str = "auto",
) -> SolvePoint:
    """The certified optimum for class ``counts [k]`` (one full batch) or batch ``compositions [B, k]``,
    with n_w copies of prototypes of Gram ``g_w`` (default ``g_star``), and its distance to ``g_star``."""
    comp = _compositions(counts)
    target = check_gram(g_star).numpy()
    if target.shape != (comp.shape[1],) * 2:
        raise ValueError(f"g_star is {target.shape[0]} x {target.shape[0]} but the counts have k = {comp.shape[1]}")
    protos = target if g_w is None else check_gram(g_w).numpy()
    gram, objective, status, name, gap, rel = _solve_point(comp, tau, protos, float(n_w), prototype_anchors, solver)
    return SolvePoint(float(n_w), _distance(gram, target), status, name, objective, gap, rel, gram)


@dataclass(frozen=True)
class CopiesResult:
    """Answer of :func:`minimal_copies`.  ``n_w`` is the smallest number of copies found that brings the
    distance to at most ``target_distance`` (None when not reached up to ``max_n_w``); ``lower`` the
    largest n_w evaluated that does not (``hi - lower <= rel_tol * hi`` at the end of the search).
    ``steps`` lists every solve along the search, in the order made; ``monotone_on_path`` says whether
    the distances of those solves, sorted by n_w, are non-increasing (to ``1e-5``), the assumption of
    the search."""

    reached: bool
    n_w: float | None
    distance: float | None
    lower: float | None
    target_distance: float
    max_n_w: float
    rel_tol: float
    steps: tuple[SolvePoint, ...]
    monotone_on_path: bool

    def to_dict(self) -> dict:
        return {
            "reached": self.reached, "n_w": self.n_w, "distance": self.distance, "lower": self.lower,
            "target_distance": self.target_distance, "max_n_w": self.max_n_w, "rel_tol": self.rel_tol,
            "monotone_on_path": self.monotone_on_path, "steps": [s.to_dict() for s in self.steps],
        }


def _monotone(steps: Iterable[SolvePoint], slack: float = 1e-5) -> bool:
    ordered = sorted(steps, key=lambda s: s.n_w)
    return all(b.distance <= a.distance + slack for a, b in zip(ordered, ordered[1:]))


def minimal_copies(
    counts,
    tau: float,
    g_star,
    target_distance: float = 0.05,
    prototype_anchors: bool = True,
    max_n_w: float = 1e4,
    rel_tol: float = 1e-3,
    g_w=None,
    solver: str = "BM",
    progress: Callable[[SolvePoint], None] | None = None,
) -> CopiesResult:
    """The smallest n_w >= 0 with d(n_w) <= ``target_distance`` (d as in the module docstring), to a
    relative tolerance ``rel_tol``, for class ``counts [k]`` (one full batch) or ``compositions [B, k]``.

    Assumes d is non-increasing in n_w on the searched set (checked on the solves the search makes:
    ``monotone_on_path``, to 1e-5; observed on the cases of ``tests/test_maps.py`` and the README maps
    for n_w >= 1, not proved).  With ``prototype_anchors`` the searched set is {0} U [1, max_n_w]: each
    anchor copy of w_a has n_w - 1 copies of itself as positives, a negative count for 0 < n_w < 1, which
    is refused (:func:`ufm.losses.check_copies`).  Without prototype anchors n_w is a weight and
    every n_w >= 0 is searched.  Search: d(0) (skipped when n_w = 0 is not a valid problem, e.g. a class
    with one sample), then n_w = 1, 2, 4, ... (the last one clipped to ``max_n_w``) until the target is
    met, then bisection between the last miss and the first hit until hi - lo <= rel_tol * hi.  Every
    solve is certified (status and weak-duality gap in ``steps``).  Not reached up to ``max_n_w``:
    ``reached`` False, ``n_w`` None.  ``solver`` defaults to the Burer-Monteiro solve: its distances
    are smooth in n_w to ~1e-6 where the interior-point ones jitter by ~1e-4 (STEP 50x5,5x5, tau 0.1,
    n_w = 10.97..11.0: BM 0.050034, 0.050030, 0.050027, 0.050019; Clarabel 0.050020, 0.049912,
    0.049999, 0.049991), which would stall the bisection.  Beyond n_w ~ 1e4 the solver's G_M loses accuracy (the sample
    terms become a tiny part of the objective; the distance then drifts by ~1e-4 to 1e-3), hence the
    default ``max_n_w``."""
    if not (math.isfinite(target_distance) and target_distance >= 0):
        raise FieldError(f"{{target_distance}} must be a finite number >= 0, got {target_distance}")
    if not (math.isfinite(max_n_w) and max_n_w > 0):
        raise FieldError(f"{{max_n_w}} must be a finite number > 0, got {max_n_w}")
    if not (0 < rel_tol < 1):
        raise FieldError(f"{{rel_tol}} must lie in (0, 1), got {rel_tol}")
    if prototype_anchors and max_n_w < 1:
        raise FieldError(f"{{max_n_w}} must be >= 1 with prototype anchors (fewer than one copy is not a count), got "
                         f"{max_n_w}")
    from ufm.solver.problem import check_solver_n_w

    check_solver_n_w(max_n_w, prototype_anchors, "max_n_w")
    comp = _compositions(counts)
    steps: list[SolvePoint] = []

    def evaluate(n_w: float) -> SolvePoint:
        point = solve_point(comp, tau, g_star, n_w, prototype_anchors, g_w, solver)
        steps.append(point)
        if progress is not None:
            progress(point)
        return point

    def done(hit: SolvePoint | None, lower: float | None) -> CopiesResult:
        return CopiesResult(hit is not None, None if hit is None else hit.n_w, None if hit is None else hit.distance,
                            lower, float(target_distance), float(max_n_w), float(rel_tol), tuple(steps),
                            _monotone(steps))

    zero_valid = not (comp.max(0) < 2).any()  # with n_w = 0 every class needs a positive pair in some batch
    if zero_valid and evaluate(0.0).distance <= target_distance:
        return done(steps[-1], None)
    lo, hi_point, n_w = 0.0, None, 1.0
    while True:
        n_w = min(n_w, float(max_n_w))
        point = evaluate(n_w)
        if point.distance <= target_distance:
            hi_point = point
            break
        lo = n_w
        if n_w >= max_n_w:
            return done(None, lo)
        n_w *= 2
    floor = 1.0 if prototype_anchors else 0.0  # below 1 copy, anchor copies are not a count (see above)
    while hi_point.n_w - lo > rel_tol * hi_point.n_w and hi_point.n_w > floor:
        mid = evaluate(max((lo + hi_point.n_w) / 2, floor))
        if mid.distance <= target_distance:
            hi_point = mid
        else:
            lo = mid.n_w
    return done(hi_point, lo)


# ----------------------------------------------------------------------------------------------- maps

RATIOS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)
N_WS = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


MAP_SOLVERS = ("BM", "auto")
MAP_GEOMETRIES = ("etf", "orthogonal")


@dataclass(frozen=True)
class MapCell:
    """One point of a distance map, full batch: class counts ``class_counts(profile, k, n_major, ratio)``
    (STEP: half minority), target G_* = ``geometry`` (prototypes G_w = G_*), temperature, copies n_w and the
    anchor convention.  ``solver``: the certified method of the map (``BM``: Burer-Monteiro, any counts;
    ``auto``: the symmetry-reduced interior point, fast when few distinct counts, e.g. STEP at any k);
    ``cross_check``: also solve with the other method and report the spread of the two distances (refused
    when the interior point would face more than ``AUTO_BM_ABOVE`` distinct counts: hours at k = 100 long-tail).
    Also the config of the ``map`` sweep kind (:mod:`ufm.sweep`), so its fields carry command-line help."""

    ratio: float = _opt(10.0, "imbalance ratio R (majority / minority count)")
    tau: float = _opt(0.1, "temperature")
    n_w: float = _opt(10.0, "copies of each prototype (a multiplicity: fractional allowed)")
    prototype_anchors: bool = _opt(True, "prototype copies are anchors too (else only positives/negatives)")
    k: int = _opt(10, "number of classes")
    n_major: int = _opt(200, "samples in each majority class")
    geometry: str = _opt("etf", "target G_* (= the prototypes' Gram): etf or orthogonal")
    profile: str = _opt("step", "class counts: balanced, step or long-tail")
    solver: str = _opt("BM", "BM (Burer-Monteiro, any counts) or auto (symmetry-reduced interior point)")
    cross_check: bool = _opt(True, "also solve with the other method; report the spread of the two distances")

    def __post_init__(self) -> None:
        from ufm._config import POSITIVE, NON_NEGATIVE, Range, check_choices, check_values
        from ufm.imbalance import PROFILES

        check_choices(self, {"geometry": MAP_GEOMETRIES, "profile": PROFILES, "solver": MAP_SOLVERS})
        check_values(self, {"ratio": Range(1), "tau": POSITIVE, "n_w": NON_NEGATIVE, "k": Range(2),
                            "n_major": Range(1)})
        check_copies(self.n_w, self.prototype_anchors)  # before any cell runs: 0 < n_w < 1 needs batch anchors
        from ufm.solver.problem import check_solver_n_w

        check_solver_n_w(self.n_w, self.prototype_anchors)

    def without_effect(self) -> dict[str, str]:
        """The fields that do nothing in this cell, each with the reason (a sweep refuses a grid over them)."""
        out = {}
        if self.n_w == 0:
            out["prototype_anchors"] = "with n_w = 0 (no prototypes)"
        if self.profile == "balanced":
            out["ratio"] = "with balanced counts"
        return out

    def check(self) -> torch.Tensor:
        """The class counts ``[k]``, after checking that they exist (e.g. n_major // ratio >= 1) and that a
        cross-check is affordable; raises ValueError otherwise."""
        if self.profile == "balanced" and self.ratio != 1:
            raise ValueError(f"ratio={self.ratio:g} with profile='balanced' (balanced counts have no ratio); use ratio=1")
        from ufm.solver import check_solve_size

        check_solve_size(self.k, 1, self.n_w > 0, "dense")  # the k x k matrices of the cell, before any is built
        counts = self.counts()
        if self.cross_check:
            from ufm.solver import AUTO_BM_ABOVE

            distinct = len(set(counts.tolist()))
            if distinct > AUTO_BM_ABOVE:
                raise FieldError(f"the cross-check solves with the interior point, which would face {distinct} distinct "
                                 f"class counts (more than {AUTO_BM_ABOVE}: far too slow); set {{cross_check=False}} "
                                 "(the Burer-Monteiro solve is certified on its own)")
        return counts

    def counts(self) -> torch.Tensor:
        """Class counts ``[k]``."""
        return class_counts(self.profile, self.k, self.n_major, self.ratio)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MapCell":
        from ufm._config import from_dict

        return from_dict(cls, data)


def map_cells(
    ratios: Sequence[float] = RATIOS,
    taus: Sequence[float] = (0.1,),
    n_ws: Sequence[float] = N_WS,
    anchors: Sequence[bool] = (True, False),
    k: int = 10,
    n_major: int = 200,
    geometry: str = "etf",
    profile: str = "step",
    solver: str = "BM",
    cross_check: bool = True,
) -> list[MapCell]:
    """The grid anchors x ratios x taus x n_ws as independent cells (each one solve, or two with
    ``cross_check``; map them in any order, on any executor, with :func:`distance_cell`)."""
    return [MapCell(float(r), float(t), float(w), bool(a), k, n_major, geometry, profile, solver, cross_check)
            for a in anchors for r in ratios for t in taus for w in n_ws]


def distance_cell(cell: MapCell) -> dict:
    """The optimum of one cell: a row with the cell's settings and counts, the distance of G_M to G_* from
    the certified ``cell.solver`` solve (``distance``, with its status, objective and certified gap), with
    ``cross_check`` the other method's distance (``distance_check``, ``solver_check``, ``status_check``) and
    their difference ``distance_spread`` (an empirical accuracy: the loss is so flat at small tau that two
    certified optima can differ in G_M), and the mean majority-majority, minority-minority and
    majority-minority cosines of G_M (minority: :func:`ufm.imbalance.minority_mask`).  Cells that are not a
    valid problem (a class with one sample and n_w = 0) give distance None and the reason in ``note``."""
    from ufm.imbalance import minority_mask

    counts = cell.check()
    row = {**asdict(cell), "counts": counts.tolist()}
    g_star = make_gram(cell.geometry, cell.k, counts)
    other_solver = "auto" if cell.solver == "BM" else "BM"
    try:
        point = solve_point(counts.numpy(), cell.tau, g_star, cell.n_w, cell.prototype_anchors, solver=cell.solver)
        other = (solve_point(counts.numpy(), cell.tau, g_star, cell.n_w, cell.prototype_anchors, solver=other_solver)
                 if cell.cross_check else None)
    except ValueError as err:
        if cell.n_w == 0 and int(counts.min()) < 2:
            return {**row, "distance": None, "status": "invalid", "note": str(err)}
        raise
    minority = minority_mask(counts).numpy()
    off = ~np.eye(cell.k, dtype=bool)

    def mean_cos(rows, cols) -> float | None:
        block = point.gram[np.ix_(rows, cols)][off[np.ix_(rows, cols)]]
        return float(block.mean()) if block.size else None

    check = {} if other is None else {"distance_check": other.distance, "solver_check": other.solver,
                                      "status_check": other.status,
                                      "distance_spread": abs(point.distance - other.distance)}
    return {**row, **point.to_dict(), "n_w": cell.n_w, "solver": cell.solver, "solver_method": point.solver, **check,
            "cos_majority": mean_cos(~minority, ~minority), "cos_minority": mean_cos(minority, minority),
            "cos_across": mean_cos(~minority, minority)}


def distance_map(cells: Sequence[MapCell], map_fn: Callable = map) -> list[dict]:
    """Rows of :func:`distance_cell` for every cell; ``map_fn`` (default the builtin ``map``) may be any
    executor's map over picklable cells."""
    return list(map_fn(distance_cell, cells))


def map_grid(base: MapCell, ratios: Sequence[float] | None = None, taus: Sequence[float] = (0.1,),
             n_ws: Sequence[float] = N_WS, anchors: Sequence[bool] = (True, False)) -> tuple[MapCell, dict]:
    """``(base, grid)`` of a distance map: rows over ``ratios`` (default :data:`RATIOS`) or, with one ratio, over
    ``taus``; columns over ``n_ws``.  Balanced counts have no ratio: their map is tau x n_w, with ratio = 1 in the
    base cell (``ratios`` must then be None or (1,))."""
    from dataclasses import replace

    for name, values in (("ratio", ratios), ("tau", taus), ("n_w", n_ws), ("prototype_anchors", anchors)):
        if values is not None and len(set(values)) != len(values):
            raise FieldError(f"{{{name}}} repeats a value: {', '.join(format(v, 'g') for v in values)}")
    grid = {"prototype_anchors": tuple(anchors)}
    if base.profile == "balanced":
        if ratios is not None and tuple(float(r) for r in ratios) != (1.0,):
            raise FieldError("{ratio} has no effect with balanced counts (they have no imbalance ratio): drop it; the "
                             "map of balanced counts is tau x n_w")
        base = replace(base, ratio=1.0)
    else:
        grid["ratio"] = tuple(float(r) for r in (RATIOS if ratios is None else ratios))
    grid["tau"] = tuple(float(t) for t in taus)
    grid["n_w"] = tuple(float(n) for n in n_ws)
    return base, grid


def run_map(
    folder,
    base: MapCell | None = None,
    grid: dict[str, Sequence] | None = None,
    executor=None,
    done: Callable[[str, bool], None] | None = None,
) -> dict:
    """A distance map as a resumable sweep of kind ``map`` (:func:`ufm.sweep.run_sweep`: one run folder per
    cell under ``folder/points``, finished cells skipped on a re-run, any executor: inline, local processes,
    SLURM), then the heatmaps of the gathered rows in ``folder/map.png`` (:func:`render_map`, drawn by
    :func:`ufm.sweep.gather`, so ``ufm gather`` redraws it too).
    ``grid``: {MapCell field: values}, default ratio x n_w x both anchor conventions.  Returns run_sweep's
    dict plus ``figure`` (None when no cell finished, e.g. SLURM without waiting)."""
    base = base or MapCell()
    grid = grid if grid is not None else {"prototype_anchors": (True, False), "ratio": RATIOS, "n_w": N_WS}
    for point in plan("map", base, grid):  # every cell's counts and sizes, before any cell runs
        point.config.check()
    report = run_sweep(folder, "map", base, grid, executor, done)
    figure = Path(report["folder"]) / "map.png"
    report["figure"] = figure if report["finished"] and figure.is_file() else None
    return report


def render_map(folder, rows: list[dict], title: str | None = None):
    """Heatmaps of a map's rows into ``folder/map.png`` (None when no row has a distance)."""
    from pathlib import Path

    from ufm.plots import map_figure, save_figure

    if not any(r.get("distance") is not None for r in rows):
        return None
    return save_figure(map_figure(rows, title), Path(folder) / "map.png")


# ----------------------------------------------------------------------------- batching (the simulator)

BATCHINGS = ("full", "shuffle", "binding")


def batching_curves(
    base,
    n_ws: Sequence[float] = (0.0, 1.0, 10.0, 100.0),
    seeds: Sequence[int] = (0, 1, 2),
    batchings: Sequence[str] = BATCHINGS,
    solver: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Distance of G_M to G_* against n_w per batching scheme, from the simulator (:func:`ufm.simulate.simulate`,
    all n_w x seeds stacked in one run per scheme), mean and standard deviation (numpy ``std``, ddof 0) over
    ``seeds``, beside the certified full-batch optimum (``batching="solver"``, one row per n_w) when ``solver``.

    ``base``: a :class:`ufm.simulate.SimConfig` (counts, target, tau (one value), anchors, batch size, optimizer,
    epochs); its n_w, seeds and batching are replaced.  Full batch is deterministic up to the seed's random
    start, so it is run with the first seed only.  Rows: {batching, n_w, mean, std, seeds, distances}."""
    from dataclasses import replace as _replace

    from ufm.simulate import build_problem, simulate

    if len(base.tau) != 1:
        raise ValueError(f"batching_curves needs one temperature in base.tau, got {base.tau}")
    unknown = [b for b in batchings if b not in BATCHINGS]
    if unknown:
        raise ValueError(f"batchings {unknown} are not among {', '.join(BATCHINGS)}")
    rows = []
    for scheme in batchings:
        run_seeds = tuple(seeds[:1]) if scheme == "full" else tuple(seeds)
        cfg = _replace(base, n_w=tuple(float(w) for w in n_ws), seeds=run_seeds, batching=scheme)
        if progress:
            progress(f"simulating {scheme} ({len(cfg.runs)} stacked runs)")
        result = simulate(cfg)
        final = result.history[-1]["distance"]
        for w in n_ws:
            dists = [final[i] for i, run in enumerate(cfg.runs) if run["n_w"] == float(w)]
            rows.append({"batching": scheme, "n_w": float(w), "mean": float(np.mean(dists)),
                         "std": float(np.std(dists)), "seeds": list(run_seeds), "distances": dists})
    if solver:
        problem = build_problem(_replace(base, n_w=(0.0,), batching="full"))
        anchors = True if base.prototype_anchors is None else base.prototype_anchors
        for w in n_ws:
            point = solve_point(problem.counts.numpy(), base.tau[0], problem.g_star.numpy(), float(w), anchors,
                                solver="BM")
            rows.append({"batching": "solver", "n_w": float(w), "mean": point.distance, "std": 0.0, "seeds": [],
                         "distances": [point.distance], "status": point.status,
                         "relative_gap": point.relative_gap})
    return rows


# ------------------------------------------------------------------ prototype geometry != target geometry


def block_gram(counts, a: float, b: float, c: float) -> np.ndarray:
    """A two-group Gram: cosine ``a`` between majority prototypes, ``b`` between minority prototypes, ``c``
    across (majority: classes with the largest count).  Valid (PSD) iff a, b <= 1, the group-sum block
    [[1 + (p-1) a, sqrt(p q) c], [sqrt(p q) c, 1 + (q-1) b]] >= 0 (p, q the group sizes)."""
    counts = np.asarray(counts)
    major = counts == counts.max()
    g = np.where(np.outer(major, major), a, np.where(np.outer(~major, ~major), b, c)).astype(float)
    np.fill_diagonal(g, 1.0)
    return g


def _block_from_params(counts, theta: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Unconstrained theta (3,) -> a valid block Gram: a = -1/(p-1) + (1 + 1/(p-1)) sigmoid(theta_0), same for
    b, and c = sin(theta_2) sqrt((1 + (p-1) a)(1 + (q-1) b) / (p q)) (the PSD boundary at |sin| = 1, where
    the ETF lies: its prototypes sum to zero)."""
    counts = np.asarray(counts)
    p = int((counts == counts.max()).sum())
    q = len(counts) - p
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    lo_a, lo_b = -1 / max(p - 1, 1), -1 / max(q - 1, 1)
    a = lo_a + (1 - lo_a) * sig(theta[0])
    b = lo_b + (1 - lo_b) * sig(theta[1])
    c = math.sin(theta[2]) * math.sqrt(max((1 + (p - 1) * a) * (1 + (q - 1) * b), 0.0) / (p * q))
    return block_gram(counts, a, b, c), (a, b, c)


def best_block_prototypes(
    counts,
    tau: float,
    n_w: float,
    g_star=None,
    prototype_anchors: bool = True,
    max_evals: int = 150,
    solver: str = "BM",
) -> dict:
    """Choose the prototype Gram G_w among two-group block Grams (:func:`block_gram`: majority-majority,
    minority-minority and across cosines) to minimize the distance of the optimal G_M to ``g_star``
    (default the ETF) at ``n_w`` copies (full batch), by Nelder-Mead (scipy) from G_w = G_*, over a
    parametrization that keeps G_w valid.  Returns the distance with G_w = G_*, the best one found, the
    best (a, b, c) and G_w (``g_w``, k x k), the number of solves and the certificate of the best solve.  A local search over a
    restricted family: a smaller distance found is real (certified solve), no improvement proves nothing
    beyond this family and this search."""
    from scipy.optimize import minimize

    counts = np.asarray(counts)
    k = len(counts)
    target = (check_gram(g_star).numpy() if g_star is not None else make_gram("etf", k).numpy())
    major = counts == counts.max()
    p, q = int(major.sum()), int((~major).sum())
    if p < 2 or q < 2:  # refused before any solve
        raise ValueError(f"the block prototype design needs at least two majority classes (the largest count) and "
                         f"two minority classes, got {p} and {q} in counts {counts.tolist()}; use more classes "
                         "(e.g. step counts with k >= 4) or other counts")
    base = solve_point(counts, tau, target, n_w, prototype_anchors, solver=solver)
    a0 = float(target[np.ix_(major, major)][~np.eye(p, dtype=bool)].mean())
    b0 = float(target[np.ix_(~major, ~major)][~np.eye(q, dtype=bool)].mean())
    c0 = float(target[np.ix_(major, ~major)].mean())
    bound = math.sqrt((1 + (p - 1) * a0) * (1 + (q - 1) * b0) / (p * q))
    logit = lambda v, lo: math.log((v - lo) / (1 - v))  # noqa: E731
    theta0 = np.array([logit(a0, -1 / (p - 1)), logit(b0, -1 / (q - 1)),
                       math.asin(max(-1.0, min(1.0, c0 / bound))) if bound > 0 else 0.0])
    cache: dict[tuple, SolvePoint] = {}

    def point(theta: np.ndarray) -> SolvePoint:
        key = tuple(np.round(theta, 12))
        if key not in cache:
            g_w, _ = _block_from_params(counts, theta)
            cache[key] = solve_point(counts, tau, target, n_w, prototype_anchors, g_w=g_w, solver=solver)
        return cache[key]

    res = minimize(lambda t: point(t).distance, theta0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "xatol": 1e-4, "fatol": 1e-7})
    best_theta = min(cache, key=lambda t: cache[t].distance)
    best = cache[best_theta]
    g_best, (a, b, c) = _block_from_params(counts, np.array(best_theta))
    return {
        "counts": counts.tolist(), "tau": tau, "n_w": n_w, "prototype_anchors": prototype_anchors,
        "distance_g_star": base.distance, "distance_best": best.distance,
        "improvement": base.distance - best.distance, "relative_improvement": 1 - best.distance / base.distance,
        "g_star_cosines": (a0, b0, c0), "best_cosines": (a, b, c), "g_w": g_best.tolist(), "solves": len(cache),
        "best_status": best.status, "best_certified_gap": best.certified_gap, "converged": bool(res.success),
    }


# --- the "map" kind of the sweep engine: one cell per point -------------------------------------------------------


def _run_cell(cell: MapCell, folder: Path) -> None:
    """One map cell (:func:`distance_cell`): config.json, then cell.json (its row) last."""
    from ufm.runio import write_json

    row = distance_cell(cell)
    write_json(folder / "config.json", cell.to_dict())
    write_json(folder / "cell.json", row)


def _cell_rows(point, folder: Path, data: dict) -> list[dict]:
    return [{**data, "point": point.name}]


register_kind("map", Kind(MapCell, "cell.json", _run_cell, _cell_rows, render_map))
