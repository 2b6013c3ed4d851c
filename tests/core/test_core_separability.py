"""Rank 1 judged at the precision the image is filtered in.

A Gaussian rounded to float32 (``np.float32(np.outer(g, g))``, or a float32 ``.npy`` file) is
rank 1 only within float32's rounding: filtering a float32 (or 8/16-bit) image, ``auto`` takes
the two 1-D passes, and their result stays within that rounding of the direct path and of
scipy.ndimage, whole arrays, borders included, every border mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

import convtool
from convtool.core.dispatch import SEPARABLE_ULPS, filtering_precision, separable_factors

import references
from conftest import assert_close, random_image

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]


def gaussian32(size: int, sigma: float) -> np.ndarray:
    """A float32 Gaussian as a user makes one: the float64 outer product rounded to float32."""
    r = np.arange(size) - size // 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    g /= g.sum()
    return np.float32(np.outer(g, g))


def skewed32(kh: int, kw: int) -> np.ndarray:
    """A float32 rank-1 kernel with no symmetry, distinct entries (flips and transposes show)."""
    u = np.linspace(0.3, 1.7, kh) ** 2
    v = np.cos(np.linspace(-1.0, 2.0, kw)) + 0.5 * np.linspace(0, 1, kw)
    return np.float32(np.outer(u, v / np.abs(v).sum()))


KERNELS = {
    "gaussian 15x15": gaussian32(15, 2.5),
    "gaussian 15x15 sigma 5": gaussian32(15, 5.0),
    "gaussian 31x31 sigma 5": gaussian32(31, 5.0),
    "skewed 7x12": skewed32(7, 12),
}


def reference(x: np.ndarray, k: np.ndarray, mode: str, cval: float) -> np.ndarray:
    """scipy.ndimage.correlate channel by channel in float64 (the plain-loop one for valid)."""
    if mode == "valid":
        return references.correlate(x, k, "valid")
    return references.scipy_correlate(x, np.asarray(k, np.float64), mode, cval)


@pytest.mark.parametrize("name", KERNELS)
def test_float32_kernels_are_rank_1_at_float32(name):
    """Rounded to float32, rank 1 within float32's rounding, not within float64's."""
    k = np.asarray(KERNELS[name], np.float64)
    assert separable_factors(k, np.float32) is not None
    assert separable_factors(k, np.float64) is None
    assert filtering_precision(np.float32, k) is np.float32
    assert filtering_precision(np.float64, k) is np.float32  # float32 values: their own rounding


def test_float64_kernels_keep_float64_precision():
    """A float64 kernel on a float64 image is judged at float64: rank 1 within float32's
    rounding only (an entry off by 1e-9 of itself) is not enough there."""
    k = np.asarray(gaussian32(15, 2.5), np.float64)
    k = k * (1 + 1e-9 * np.cos(np.arange(k.size)).reshape(k.shape))
    assert filtering_precision(np.float64, k) is np.float64
    assert separable_factors(k, np.float64) is None
    assert separable_factors(k, np.float32) is not None
    assert filtering_precision(np.uint8, k) is np.float32


def test_beyond_rounding_is_not_rank_1():
    """A kernel off rank 1 by more than the rounding (an entry moved by a few times the
    bound, a small fraction of itself) goes to the direct or FFT path."""
    k = np.asarray(gaussian32(15, 2.5), np.float64)
    k[3, 9] += 4 * SEPARABLE_ULPS * np.finfo(np.float32).eps * np.abs(k).sum()
    assert separable_factors(k, np.float32) is None
    x = random_image((20, 24), np.float32, seed=2)
    np.testing.assert_array_equal(
        convtool.correlate(x, k, threads=1), convtool.correlate(x, k, method="direct", threads=1)
    )


@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize(("dtype", "channels"), [(np.float32, 3), (np.uint8, 0), (np.uint16, 2)])
def test_float32_kernel_separable_within_rounding_of_direct_and_scipy(dtype, channels, name, mode):
    """``auto`` takes the two passes (bit for bit ``method="separable"``); whole arrays within
    float32 rounding of the direct path and of scipy.ndimage in float64."""
    k = KERNELS[name]
    kh, kw = k.shape
    shape = (kh + 9, kw + 14) + ((channels,) if channels else ())
    x = random_image(shape, dtype, seed=kh + kw)
    kwargs = {"border": mode, "cval": 0.5 if dtype == np.float32 else 77.5, "threads": 1}
    auto = convtool.correlate(x, k, **kwargs)
    separable = convtool.correlate(x, k, method="separable", **kwargs)
    assert auto.dtype == np.float32
    np.testing.assert_array_equal(auto, separable)
    assert_close(auto, convtool.correlate(x, k, method="direct", **kwargs), k, x)
    assert_close(auto, reference(x, k, mode, kwargs["cval"]), k, x)


@pytest.mark.parametrize("mode", MODES)
def test_image_smaller_than_the_kernel(mode):
    """A 31×31 float32 Gaussian over a 6×9 image: borders all the way through."""
    k = KERNELS["gaussian 31x31 sigma 5"]
    x = random_image((6, 9, 3), np.float32, seed=3)
    got = convtool.correlate(x, k, border=mode, cval=0.25, threads=1)
    np.testing.assert_array_equal(
        got, convtool.correlate(x, k, border=mode, cval=0.25, method="separable", threads=1)
    )
    assert_close(got, reference(x, k, mode, 0.25), k, x)


def test_float64_image_with_a_float32_kernel_stays_within_the_kernels_rounding():
    """A float64 image and float32 weights: two passes, within float32's rounding of the
    direct path relative to Σ|K|·max|X| (the weights' own precision), far closer than that in
    practice."""
    k = KERNELS["gaussian 15x15"]
    x = random_image((40, 33, 2), np.float64, seed=5)
    auto = convtool.correlate(x, k, border="reflect", threads=1)
    assert auto.dtype == np.float64
    np.testing.assert_array_equal(
        auto, convtool.correlate(x, k, border="reflect", method="separable", threads=1)
    )
    direct = convtool.correlate(x, k, border="reflect", method="direct", threads=1)
    bound = SEPARABLE_ULPS * np.finfo(np.float32).eps * np.abs(k).sum() * np.abs(x).max()
    assert np.abs(auto - direct).max() <= bound
    expected = np.stack([ndi.correlate(x[..., c], k.astype(np.float64), mode="reflect")
                         for c in range(2)], -1)  # fmt: skip
    assert np.abs(auto - expected).max() <= bound


def test_float64_image_with_a_float64_kernel_is_unchanged():
    """A float64 Gaussian on a float64 image still factors (exact outer products do), and a
    float64 kernel off rank 1 by 1e-9 goes direct: exact to float64 rounding."""
    r = np.arange(15) - 7
    g = np.exp(-(r * r) / 12.5)
    k = np.outer(g, g) / g.sum() ** 2
    assert separable_factors(k, np.float64) is not None
    off = k * (1 + 1e-9 * np.cos(np.arange(k.size)).reshape(k.shape))
    x = random_image((30, 31), np.float64, seed=6)
    got = convtool.correlate(x, off, border="mirror", threads=1)
    np.testing.assert_array_equal(
        got, convtool.correlate(x, off, border="mirror", method="direct", threads=1)
    )


def test_float32_npy_kernel_file_is_taken_as_float32(tmp_path):
    """A kernel saved as a float32 .npy is read as its float32 values: a float64 image is then
    filtered by the two passes, within the kernel's rounding of scipy."""
    k = KERNELS["gaussian 31x31 sigma 5"]
    path = tmp_path / "g.npy"
    np.save(path, k)
    loaded = convtool.load_kernel(f"@{path}").weights
    np.testing.assert_array_equal(loaded, k)
    assert filtering_precision(np.float64, loaded) is np.float32
    x = random_image((50, 45), np.float64, seed=7)
    got = convtool.correlate(x, f"@{path}", border="nearest", threads=1)
    np.testing.assert_array_equal(
        got, convtool.correlate(x, loaded, border="nearest", method="separable", threads=1)
    )
    bound = SEPARABLE_ULPS * np.finfo(np.float32).eps * np.abs(k).sum() * np.abs(x).max()
    expected = ndi.correlate(x, k.astype(np.float64), mode="nearest")
    assert np.abs(got - expected).max() <= bound


def test_integer_output_of_a_float32_gaussian():
    """uint8 → uint8 through the passes: the float result rounded and clipped, bit for bit."""
    k = KERNELS["gaussian 15x15"]
    x = random_image((30, 40, 3), np.uint8, seed=8)
    got = convtool.correlate(x, k, border="mirror", output=np.uint8, threads=1)
    float_result = convtool.correlate(x, k, border="mirror", method="separable", threads=1)
    np.testing.assert_array_equal(got, np.clip(np.rint(float_result), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_per_channel_float32_gaussians_take_the_passes_of_a_layer(mode):
    """Per-channel kernels (a layer's pairs) are judged alike: float32 Gaussians go to the
    separable pass (``method="separable"`` accepts them), within float32 rounding of the
    direct pass and of scipy.ndimage channel by channel."""
    layer_module = pytest.importorskip("convtool.core.layer")
    ks = [KERNELS["gaussian 15x15"], KERNELS["gaussian 15x15 sigma 5"], skewed32(15, 15)]
    per_channel = np.stack(ks)
    x = random_image((24, 29, 3), np.float32, seed=9)
    kwargs = {"border": mode, "cval": 0.5, "threads": 1}
    auto = layer_module.correlate_layer(x, per_channel, **kwargs)
    separable = layer_module.correlate_layer(x, per_channel, method="separable", **kwargs)
    direct = layer_module.correlate_layer(x, per_channel, method="direct", **kwargs)
    np.testing.assert_array_equal(auto, separable)
    for c, k in enumerate(ks):
        assert_close(auto[..., c], direct[..., c], k, x)
        assert_close(auto[..., c], reference(x[..., c], k, mode, 0.5), k, x)
