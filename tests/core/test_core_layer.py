"""Per-channel kernels and layers applied: out[o] = Σ_i corr(x[i], K[o, i]) + b[o]."""

from __future__ import annotations

import numpy as np
import pytest

import convtool
from convtool.core.layer import convolve_layer, correlate_layer
from convtool.kernels.layer import Layer

from conftest import random_image
from references import conv2d_layer

BORDERS = ["reflect", "mirror", "nearest", "wrap", "constant", "valid"]


def distinct(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Weights whose entries all differ, so a misplaced pair, flip or transpose cannot hide."""
    n = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(np.arange(1, n + 1)) / n
    return (values * np.where(np.arange(n) % 3 == 1, -1, 1)).reshape(shape)


def _tolerance(weights: np.ndarray, x: np.ndarray, dtype: type) -> float:
    eps = 1e-12 if dtype == np.float64 else 4e-6
    return eps * np.abs(weights).sum() * max(1.0, float(np.abs(x.astype(float)).max()))


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
@pytest.mark.parametrize(
    ("shape", "kshape"),
    [((3, 3, 5, 4), (13, 11, 3)), ((1, 3, 3, 3), (9, 12, 3)), ((3, 1, 2, 5), (10, 7))],
)
def test_layer_equals_the_einsum_reference(border, method, shape, kshape):
    """Whole arrays, borders included, 3->3, 3->1 and 1->3, odd, even and non-square kernels."""
    x = random_image(kshape, np.float64, seed=1)
    w = distinct(shape)
    bias = np.arange(1, shape[0] + 1) / 4
    got = correlate_layer(x, Layer(w, bias), border=border, cval=0.375, method=method)
    expected = conv2d_layer(x, w, bias, border, 0.375)
    if x.ndim == 2 and shape[0] == 1:
        expected = expected[..., 0]
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(w, x, np.float64))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("threads", [None, 1, 2])
def test_layer_on_every_image_type_and_thread_count(dtype, threads):
    x = random_image((23, 19, 3), dtype, seed=2)
    w = distinct((2, 3, 5, 5))
    got = correlate_layer(x, Layer(w, [0.5, -1]), border="mirror", threads=threads)
    assert got.dtype == np.float32
    expected = conv2d_layer(x, w, [0.5, -1], "mirror")
    np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(w, x, np.float32))


@pytest.mark.parametrize("border", ["reflect", "constant", "valid"])
def test_each_pair_equals_scipy(border):
    """Σ_i scipy.ndimage.correlate(x[i], K[o, i]) + b[o], with a separable pair (which auto
    takes through the separable path) among direct ones."""
    from references import scipy_correlate

    x = random_image((30, 26, 3), np.float64, seed=3)
    w = distinct((3, 3, 7, 7))
    w[1, 2] = np.outer(np.arange(1, 8), np.arange(7, 0, -1)) / 20  # rank 1
    bias = [0.25, 0.5, -2]
    got = correlate_layer(x, Layer(w, bias), border=border, cval=0.5)
    for o in range(3):
        expected = sum(scipy_correlate(x[..., i], w[o, i], border, 0.5) for i in range(3))
        np.testing.assert_allclose(got[..., o], expected + bias[o], atol=1e-11)


def test_per_channel_kernels_are_the_diagonal_layer():
    x = random_image((17, 15, 3), np.float64, seed=4)
    w = distinct((3, 3, 4))
    per = correlate_layer(x, Layer(w, [1, 2, 3]), border="wrap")
    full = correlate_layer(x, Layer(Layer(w).full(), [1, 2, 3]), border="wrap")
    np.testing.assert_allclose(per, full, atol=1e-12)
    np.testing.assert_allclose(per, conv2d_layer(x, w, [1, 2, 3], "wrap"), atol=1e-11)


def test_convolve_layer_flips_every_kernel():
    x = random_image((12, 14, 2), np.float64, seed=5)
    w = distinct((2, 2, 3, 3))
    np.testing.assert_allclose(
        convolve_layer(x, w, border="nearest"),
        conv2d_layer(x, w[..., ::-1, ::-1], [0, 0], "nearest"),
        atol=1e-12,
    )


def test_a_large_image_takes_the_jitted_path_and_agrees():
    """Beyond NUMPY_WORK the direct pairs share one jitted pass; it agrees with the reference."""
    x = random_image((300, 200, 3), np.float32, seed=6)
    w = distinct((3, 3, 5, 5))
    got = correlate_layer(x, Layer(w, [0, 1, 2]), border="reflect")
    expected = conv2d_layer(x, w, [0, 1, 2], "reflect")
    np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(w, x, np.float32))


def test_shapes_that_do_not_fit_the_image_are_refused_naming_both():
    x = np.zeros((8, 8, 4))
    with pytest.raises(convtool.KernelError) as info:
        correlate_layer(x, Layer(np.ones((1, 3, 3, 3))))
    assert str(info.value) == (
        "a 3->1 layer of 3x3 kernels takes 3 input channels; the image (shape (8, 8, 4)) has "
        "4: use a layer with 4 inputs, or an image with 3"
    )
    with pytest.raises(
        convtool.KernelError, match=r"kernels take 3 input channels; the image .shape .8, 8.. has 1"
    ):
        correlate_layer(np.zeros((8, 8)), np.ones((3, 3, 3)))
    with pytest.raises(convtool.KernelError, match="larger than the 2x2 image"):
        correlate_layer(np.zeros((2, 2, 1)), np.ones((1, 1, 3, 3)), border="valid")
    with pytest.raises(convtool.UsageError, match="unknown border"):
        correlate_layer(x, np.ones((4, 1, 1)), border="edge")
    with pytest.raises(convtool.KernelError, match="one 2-D kernel, not per-channel"):
        correlate_layer(x, "box:3")


def _rank1(kh: int, kw: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.outer(rng.permutation(np.arange(1, kh + 1)), rng.permutation(np.arange(kw)) - 2.5)


@pytest.mark.parametrize("border", ["reflect", "constant", "valid"])
def test_separable_pairs_in_the_shared_pass(border):
    """Rank-1 pairs larger than 3x3 are summed as two 1-D passes beside the direct pairs."""
    x = random_image((260, 90, 3), np.float64, seed=7)
    w = distinct((2, 3, 9, 7))
    w[0, 1] = _rank1(9, 7, 1)
    w[1, 0] = _rank1(9, 7, 2)
    w[1, 2] = 0  # skipped
    got = correlate_layer(x, Layer(w, [1, -1]), border=border, cval=0.25)
    np.testing.assert_allclose(
        got, conv2d_layer(x, w, [1, -1], border, 0.25), atol=_tolerance(w, x, np.float64)
    )


def test_method_separable_needs_every_pair_separable():
    x = random_image((40, 30, 2), np.float32, seed=8)
    w = np.stack([np.stack([_rank1(5, 4, 2 * o + i) for i in range(2)]) for o in range(2)])
    got = correlate_layer(x, Layer(w), method="separable", border="wrap")
    np.testing.assert_allclose(
        got, conv2d_layer(x, w, [0, 0], "wrap"), atol=_tolerance(w, x, np.float32)
    )
    w[1, 1, 0, 0] += 1
    with pytest.raises(convtool.KernelError, match=r"5x4 kernel K\[1, 1\] is not separable"):
        correlate_layer(x, Layer(w), method="separable")


def test_auto_takes_the_fft_for_large_pairs_and_agrees():
    x = random_image((300, 320, 2), np.float64, seed=9)
    w = distinct((1, 2, 31, 31))
    got = correlate_layer(x, Layer(w, [2]), border="mirror")
    np.testing.assert_allclose(got, conv2d_layer(x, w, [2], "mirror"), atol=1e-9)


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant"])
@pytest.mark.parametrize("method", ["auto", "direct"])
def test_images_smaller_than_the_kernel_and_single_rows(border, method):
    """The ring of extended rows walks the border rule many times round a tiny image."""
    w = distinct((2, 2, 5, 6))
    for shape in [(3, 2, 2), (1, 7, 2), (6, 1, 2)]:
        x = random_image(shape, np.float64, seed=sum(shape))
        got = correlate_layer(x, Layer(w, [1, 2]), border=border, cval=-0.5, method=method)
        expected = conv2d_layer(x, w, [1, 2], border, -0.5)
        np.testing.assert_allclose(got, expected, atol=_tolerance(w, x, np.float64))
