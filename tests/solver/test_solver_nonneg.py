"""ufm.solver.nonneg: non-negative prototypes (ReLU features) with a given Gram, or a refusal saying why none exist."""

import numpy as np
import pytest
import torch

from ufm.geometry import etf_gram, orthogonal_gram
from ufm.solver.nonneg import nonnegative_prototypes


def test_prototypes_are_non_negative_unit_rows_with_the_gram():
    g = np.full((3, 3), 0.5) + 0.5 * np.eye(3)
    w = nonnegative_prototypes(g, 3)
    assert w.dtype == torch.float64 and w.shape == (3, 3) and (w >= 0).all()
    np.testing.assert_allclose((w @ w.T).numpy(), g, atol=1e-7)
    np.testing.assert_allclose(nonnegative_prototypes(orthogonal_gram(4), 4) @ nonnegative_prototypes(
        orthogonal_gram(4), 4).T, np.eye(4), atol=1e-7)


def test_negative_cosines_and_bad_dimensions_are_refused():
    with pytest.raises(ValueError, match="g_star has negative cosines"):
        nonnegative_prototypes(etf_gram(3), 3)
    with pytest.raises(ValueError, match="embedding dimension d must be a positive integer, got 0"):
        nonnegative_prototypes(orthogonal_gram(3), 0)
