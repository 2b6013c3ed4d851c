"""The kernel value: weights checked, the zero-sum rule, the bias."""

from __future__ import annotations

import numpy as np
import pytest

import convtool
from convtool.kernels.value import Kernel, is_zero_sum


def test_zero_sum_rule_ignores_rounding_residue():
    """|ΣK| ≤ 1e-12·Σ|K| counts as zero, so --normalize never divides by a residue."""
    assert is_zero_sum(np.array([[0.1, 0.2, -0.3]]))
    assert not is_zero_sum(np.array([[1.0, -0.999]]))
    k = Kernel(np.array([[1.0, -1.0]]))
    assert k.normalized() is k
    np.testing.assert_allclose(Kernel(np.array([[1.0, 3.0]])).normalized().weights, [[0.25, 0.75]])


@pytest.mark.parametrize(
    "weights",
    [np.array([[1 + 2j, 0]]), [[1j, 2]], np.ones((2, 2), dtype=np.complex64)],
)
def test_complex_weights_are_refused_not_truncated(weights):
    """np.array(complex, float64) drops the imaginary part (with only a ComplexWarning)."""
    with pytest.raises(convtool.KernelError, match="has complex entries; a kernel needs real"):
        Kernel(weights)
    with pytest.raises(convtool.KernelError, match="complex"):
        convtool.correlate(np.ones((4, 4)), weights)


@pytest.mark.parametrize(
    "weights", [[[1, 2], [3]], [(1, 2), (3,)], [np.array([1.0, 2.0]), np.array([3.0])]]
)
def test_ragged_python_rows_are_named_ragged(weights):
    with pytest.raises(convtool.KernelError, match=r"ragged rows \(lengths \[1, 2\]\)"):
        Kernel(weights)


@pytest.mark.parametrize("bias", ["0.5", None, True, 1j])
def test_a_bias_that_is_not_a_real_number_is_refused(bias):
    with pytest.raises(convtool.KernelError, match="is not a real number"):
        Kernel(np.ones((1, 1)), bias=bias)
