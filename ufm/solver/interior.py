"""The collapsed problem for any batch-set by interior point: the cone program of :mod:`.grouped` with one
group per class (unknowns M_ac, X_ac, X_aa and Y with X = Y F, block [[M, Y], [Y^T, I_r]] >= 0), then
the Newton polish while its KKT system is small, else the full-space certificate of :mod:`.certificate`."""

from __future__ import annotations

import numpy as np

from .certificate import certificate
from .grouped import solve_cone
from .problem import Problem
from .result import SolveResult

__all__ = ["solve_interior"]


def solve_interior(problem: Problem, solver: str = "CLARABEL", polish: bool = True) -> SolveResult:
    """Interior point (``solver`` CLARABEL or SCS) on ``problem``, polished and certified (see the module docstring)."""
    singletons = [np.array([c]) for c in range(problem.k)]
    return solve_cone(problem, singletons, "interior", solver, polish,
                      certificate=lambda gram, cross: certificate(problem, gram, cross)["certified_gap"])
