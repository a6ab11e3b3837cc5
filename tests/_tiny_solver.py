"""A tiny collapsed problem shared by the tests of the solver's parts: counts 3,3,1,1 in one full batch, tau 0.5,
5 copies of ETF prototypes."""

import numpy as np

from ufm.geometry import etf_gram
from ufm.solver.problem import Problem

COUNTS = np.array([[3, 3, 1, 1]])
G = etf_gram(4).numpy()


def tiny_problem(**overrides) -> Problem:
    return Problem.make(**{"compositions": COUNTS, "tau": 0.5, "g_star": G, "n_w": 5.0, **overrides})
