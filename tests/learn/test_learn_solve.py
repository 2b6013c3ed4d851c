"""learn's blocked Cholesky factorisation against numpy's (LAPACK's)."""

from __future__ import annotations

import numpy as np
import pytest

from convtool.learn import lstsq


@pytest.mark.parametrize("n", [1, 7, lstsq.BLOCK, lstsq.BLOCK + 1, 2 * lstsq.BLOCK + 37])
def test_blocked_cholesky_is_numpys_factor(n):
    """Made in place, lower triangular, the factor numpy gives (to rounding)."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n + 20, n))
    a = x.T @ x
    expected = np.linalg.cholesky(a)
    work = a.copy()
    got = lstsq.cholesky_in_place(work)
    assert got is work
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert not np.triu(got, 1).any()


def test_blocked_cholesky_refuses_an_indefinite_matrix():
    n = lstsq.BLOCK + 10
    a = np.eye(n)
    a[n - 1, n - 1] = -1.0  # the last block is not positive definite
    with pytest.raises(np.linalg.LinAlgError):
        lstsq.cholesky_in_place(a)
