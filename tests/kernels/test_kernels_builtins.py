"""The built-in kernels: exact matrices, invariants, and scipy's Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import convtool
from convtool.kernels.builtins import BUILTINS
from convtool.kernels.spec import parse_kernel
from convtool.kernels.value import MAX_KERNEL_SIDE, is_zero_sum

EXACT = {
    "identity": [[1]],
    "edge": [[1, -1]],
    "edge-x": [[1, -1]],
    "edge-y": [[1], [-1]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "roberts-x": [[1, 0], [0, -1]],
    "roberts-y": [[0, 1], [-1, 0]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "box": np.full((3, 3), 1 / 9),
    "box:2": np.full((2, 2), 0.25),
    "box:5": np.full((5, 5), 1 / 25),
    "diff:1": [[1, -1]],
    "diff:2": [[1, -2, 1]],
    "diff:order=3": [[1, -3, 3, -1]],
    "diff:order=2,axis=y": [[1], [-2], [1]],
    "directional:0": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "directional:angle=90": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "directional:180": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "motion:3": [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]],
    "motion:length=3,angle=90": [[0, 1 / 3, 0], [0, 1 / 3, 0], [0, 1 / 3, 0]],
    "motion:5,45": np.fliplr(np.eye(5)) / 5,
    "motion:5,135": np.eye(5) / 5,
    "motion:4,0": np.pad([[0.2] * 5], ((2, 2), (0, 0))),
}


@pytest.mark.parametrize(("spec", "matrix"), list(EXACT.items()))
def test_exact_matrix(spec, matrix):
    np.testing.assert_allclose(parse_kernel(spec), np.asarray(matrix, float), rtol=0, atol=1e-15)


def gaussian_reference(sigma: float, n: int) -> np.ndarray:
    g = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            y, x = i - (n - 1) / 2, j - (n - 1) / 2
            g[i, j] = math.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return g / g.sum()


@pytest.mark.parametrize(
    ("spec", "sigma", "n"),
    [
        ("gaussian", 1.0, 9),
        ("gaussian:2", 2.0, 17),
        ("gaussian:0.6", 0.6, 5),
        ("gaussian:sigma=2,size=9", 2.0, 9),
        ("gaussian:sigma=2,truncate=3", 2.0, 13),
        ("gaussian:1.1", 1.1, 9),
        ("gaussian:0.5,4", 0.5, 4),
        ("gaussian:size=6,sigma=1.2", 1.2, 6),
    ],
)
def test_gaussian(spec, sigma, n):
    """Sampled at i − (N−1)/2, symmetric also for even N, N = 2·int(4σ + 0.5)+1 by default (0.6
    gives 5, where 2⌈4σ⌉+1 is 7), sum 1."""
    k = parse_kernel(spec)
    np.testing.assert_allclose(k, gaussian_reference(sigma, n), rtol=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    np.testing.assert_allclose(k, k.T)


def test_log_has_negative_centre_and_sums_to_zero():
    k = parse_kernel("log:sigma=1.4")
    assert k.shape == (13, 13)
    assert k[6, 6] == k.min() < 0
    assert abs(k.sum()) < 1e-14
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])


def test_unsharp_is_identity_plus_amount_times_detail():
    g = parse_kernel("gaussian:1")
    expected = -1.5 * g
    expected[4, 4] += 2.5
    np.testing.assert_allclose(parse_kernel("unsharp:sigma=1,amount=1.5"), expected)


@pytest.mark.parametrize("name", list(BUILTINS))
def test_invariants(name):
    """Blurs sum to 1; derivative kernels and Laplacians sum to 0; nothing is non-finite."""
    k = parse_kernel(name)
    assert np.isfinite(k).all()
    if name in {"box", "gaussian", "motion", "unsharp", "sharpen", "identity", "emboss"}:
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
    else:
        assert is_zero_sum(k) or abs(k.sum()) < 1e-12


@pytest.mark.parametrize("name", ["gaussian", "log"])
def test_default_size_limit_is_stated_for_sigma(name):
    """sigma 128.125 needs 2·int(513)+1 = 1027 > 1025: refused for its sigma, not a size never
    given (it was 171 while the size was 2⌈3σ⌉+1)."""
    assert parse_kernel(f"{name}:128.12").shape == (MAX_KERNEL_SIDE, MAX_KERNEL_SIDE)
    with pytest.raises(convtool.KernelError) as info:
        parse_kernel(f"{name}:128.125")
    assert str(info.value) == (
        f"{name}: sigma 128.125 needs a kernel larger than the limit 1025 (its side is "
        "2·int(4·σ + 0.5) + 1); choose a sigma below 128.125, a smaller truncate=T, or give "
        "size=N"
    )
    assert parse_kernel(f"{name}:sigma=171,truncate=2").shape == (685, 685)
    assert parse_kernel(f"{name}:sigma=171,size=5").shape == (5, 5)


def scipy_gaussian1d(sigma: float, truncate: float) -> np.ndarray:
    """The 1-D kernel of scipy.ndimage.gaussian_filter: its response to a unit impulse."""
    radius = int(truncate * sigma + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    return ndimage.gaussian_filter1d(impulse, sigma, truncate=truncate, mode="constant")


@pytest.mark.parametrize("sigma", [0.5, 0.6, 1.1, 2, 2.375, 5])
def test_gaussian_weights_are_scipys(sigma):
    """scipy.ndimage.gaussian_filter's kernel (radius int(4σ + 0.5)) per axis: the default
    was 2⌈3σ⌉+1, up to 0.42 grey levels away at σ = 5."""
    g1 = scipy_gaussian1d(sigma, 4.0)
    np.testing.assert_allclose(parse_kernel(f"gaussian:{sigma}"), np.outer(g1, g1), atol=1e-16)
    g1 = scipy_gaussian1d(sigma, 2.5)
    np.testing.assert_allclose(
        parse_kernel(f"gaussian:sigma={sigma},truncate=2.5"), np.outer(g1, g1), atol=1e-16
    )


@pytest.mark.parametrize("sigma", [0.5, 0.6, 2, 5])
def test_gaussian_filters_as_scipy_gaussian_filter(sigma):
    """The whole array, borders included, odd and non-square, smaller than the kernel at σ 5."""
    x = np.random.default_rng(7).random((23, 34))
    np.testing.assert_allclose(
        convtool.correlate(x, f"gaussian:{sigma}", border="reflect"),
        ndimage.gaussian_filter(x, sigma, mode="reflect"),
        rtol=0,
        atol=1e-14,
    )
    np.testing.assert_allclose(
        convtool.correlate(x, f"gaussian:sigma={sigma},truncate=3", border="mirror"),
        ndimage.gaussian_filter(x, sigma, mode="mirror", truncate=3),
        rtol=0,
        atol=1e-14,
    )


def test_log_and_unsharp_take_gaussians_size():
    for spec, n in [("log:2", 17), ("log:sigma=2,truncate=3", 13), ("unsharp:0.6", 5)]:
        assert parse_kernel(spec).shape == (n, n), spec
    g = parse_kernel("gaussian:sigma=1.5,truncate=2")
    expected = -2 * g
    expected[3, 3] += 3
    np.testing.assert_allclose(parse_kernel("unsharp:1.5,2,truncate=2"), expected)
