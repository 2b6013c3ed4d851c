"""The FFT route of learn's normal equations against the pixel-by-pixel pass and plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from convtool.learn import lstsq, report
from convtool.learn.fit import learn_kernel
from convtool.learn.gram import augmented_gram, valid_correlation, window_gram

SHAPES = [
    # (channels, H, W, kh, kw): odd, even, non-square, 1-wide, kernel as large as the image
    (1, 7, 9, 3, 4),
    (3, 10, 12, 4, 3),
    (2, 6, 6, 6, 6),
    (3, 9, 8, 1, 2),
    (1, 11, 5, 5, 1),
    (1, 17, 23, 8, 7),
]


def patch_matrix(plane: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The (samples × kh·kw) patch matrix of one plane's valid windows, by loops."""
    h, w = plane.shape
    rows = [
        [plane[i + a, j + b] for a in range(kh) for b in range(kw)]
        for i in range(h - kh + 1)
        for j in range(w - kw + 1)
    ]
    return np.array(rows, dtype=np.float64)


def reference(x: np.ndarray, y: np.ndarray, kept: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Σ v vᵀ of v = (window, 1, y) over the kept samples, from the patch matrices."""
    n = kh * kw
    total = np.zeros((n + 2, n + 2))
    for c in range(x.shape[0]):
        p = patch_matrix(x[c], kh, kw)
        v = np.c_[p, np.ones(len(p)), y[c].ravel()][kept[c].ravel()]
        total += v.T @ v
    return total


@pytest.mark.parametrize("shape", SHAPES)
def test_window_gram_of_integers_is_the_patch_products_exactly(shape):
    """Rounded to the integers they are, the FFT sums equal XᵀX bit for bit."""
    c, h, w, kh, kw = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 256, (c, h, w)).astype(np.float64)
    expected = sum(patch_matrix(x[i], kh, kw).T @ patch_matrix(x[i], kh, kw) for i in range(c))
    np.testing.assert_array_equal(window_gram(x, x, kh, kw, integer=True), expected)


def test_window_gram_of_two_planes_is_their_cross_products():
    """G[p, r] = Σ A-window[p]·B-window[r]: not symmetric, and B's lags are not A's."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 13, 11))
    expected = patch_matrix(a, 4, 3).T @ patch_matrix(b, 4, 3)
    got = window_gram(a, b, 4, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert not np.allclose(got, got.T)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("left_out", [0.0, 0.3, 0.8])
def test_augmented_gram_leaves_out_the_masked_samples(shape, left_out):
    """With samples left out (a few, or most: then the kept ones are summed directly)."""
    c, h, w, kh, kw = shape
    rng = np.random.default_rng(sum(shape) + int(10 * left_out))
    x = rng.integers(0, 256, (c, h, w)).astype(np.float64)
    y = rng.integers(0, 256, (c, h - kh + 1, w - kw + 1)).astype(np.float64)
    kept = rng.random(y.shape) >= left_out
    got = augmented_gram(x, y, kept, kh, kw, integer=True)
    np.testing.assert_array_equal(got, reference(x, y, kept, kh, kw))


def test_valid_correlation_matches_scipy():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 15, 12))
    k = rng.standard_normal((4, 5))
    got = valid_correlation(x, k)
    for c in range(2):
        full = ndi.correlate(x[c], k, mode="constant", origin=(-2, -2))
        np.testing.assert_allclose(got[c], full[:12, :8], atol=1e-12)


@pytest.fixture
def fft_route(monkeypatch):
    """Every pair takes the FFT route, whatever its size."""
    monkeypatch.setattr(lstsq, "use_fft", lambda *_: True)
    monkeypatch.setattr(report, "use_fft", lambda *_: True)


@pytest.fixture
def direct_route(monkeypatch):
    monkeypatch.setattr(lstsq, "use_fft", lambda *_: False)
    monkeypatch.setattr(report, "use_fft", lambda *_: False)


def blurred_pair(dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 40×37 RGB noise image, its same-size correlation with an asymmetric 5×4 kernel of
    distinct entries (scipy.ndimage, per channel), plus a little noise; and the kernel."""
    rng = np.random.default_rng(seed)
    k = rng.random((5, 4)) + np.arange(20).reshape(5, 4) / 20
    k /= k.sum()
    x = rng.random((40, 37, 3))
    y = np.stack([ndi.correlate(x[..., c], k, mode="reflect") for c in range(3)], axis=-1)
    y += rng.normal(0, 1e-3, y.shape)
    if dtype == np.uint8:
        return (
            np.rint(x * 255).astype(np.uint8),
            np.clip(np.rint(y * 255), 0, 255).astype(np.uint8),
            k,
        )
    return x, y, k


def lstsq_reference(x, y, kh, kw, bias, keep) -> np.ndarray:
    """np.linalg.lstsq over the patch matrix of the kept samples (same-size target)."""
    rows, targets = [], []
    for c in range(x.shape[2]):
        p = patch_matrix(x[..., c], kh, kw)
        t = y[kh // 2 : kh // 2 + x.shape[0] - kh + 1, kw // 2 : kw // 2 + x.shape[1] - kw + 1, c]
        m = keep(t).ravel()
        rows.append(np.c_[p, np.ones(len(p))][m] if bias else p[m])
        targets.append(t.ravel()[m])
    return np.linalg.lstsq(np.vstack(rows), np.concatenate(targets), rcond=None)[0]


@pytest.mark.parametrize("bias", [False, True])
def test_fft_route_gives_the_pixel_by_pixel_answer_on_floats(request, bias):
    """Float data: the FFT route, the jitted pass and numpy's lstsq agree to 1e-9."""
    x, y, _ = blurred_pair(np.float64)
    y = y + 0.25
    request.getfixturevalue("direct_route")
    direct = learn_kernel(x, y, (5, 4), bias=bias)
    request.getfixturevalue("fft_route")
    fft = learn_kernel(x, y, (5, 4), bias=bias)
    z = lstsq_reference(x, y, 5, 4, bias, lambda t: np.ones(t.shape, dtype=bool))
    np.testing.assert_allclose(fft.weights.ravel(), z[:20], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fft.weights, direct.weights, rtol=1e-9, atol=1e-12)
    assert fft.bias == pytest.approx(direct.bias, rel=1e-9, abs=1e-12)
    assert fft.rmse == pytest.approx(direct.rmse, rel=1e-9)
    assert fft.max_error == pytest.approx(direct.max_error, rel=1e-9)
    assert fft.r2 == pytest.approx(direct.r2, rel=1e-9)


def test_fft_route_leaves_out_clipped_float_samples(request):
    """A float target declared integer-stored (clip_limits) loses its samples at 0 and 1 on
    both routes alike, and numpy's lstsq over the kept rows agrees."""
    x, y, _ = blurred_pair(np.float64, seed=1)
    y = np.clip(8 * (y - 0.5) + 0.5, 0.0, 1.0)
    request.getfixturevalue("direct_route")
    direct = learn_kernel(x, y, (5, 4), clip_limits=[(0.0, 1.0)])
    request.getfixturevalue("fft_route")
    fft = learn_kernel(x, y, (5, 4), clip_limits=[(0.0, 1.0)])
    assert fft.pixels_clipped == direct.pixels_clipped > 0
    assert fft.pixels_used == direct.pixels_used
    z = lstsq_reference(x, y, 5, 4, False, lambda t: (t > 0) & (t < 1))
    np.testing.assert_allclose(fft.weights.ravel(), z, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fft.weights, direct.weights, rtol=1e-9, atol=1e-12)


def test_fft_route_over_8_bit_samples_gives_the_same_bytes(request):
    """8-bit pairs: the FFT sums, rounded, are the exact integers of the pixel-by-pixel pass,
    so the kernel and its figures are the same bytes, clipped samples left out on both."""
    x, y, _ = blurred_pair(np.uint8, seed=2)
    y = np.clip(y.astype(np.int64) * 2 - 60, 0, 255).astype(np.uint8)
    request.getfixturevalue("direct_route")
    direct = learn_kernel(x, y, (5, 4), bias=True)
    request.getfixturevalue("fft_route")
    fft = learn_kernel(x, y, (5, 4), bias=True)
    assert direct.pixels_clipped > 0
    np.testing.assert_array_equal(fft.weights, direct.weights)
    assert (fft.bias, fft.rmse, fft.r2, fft.pixels_used, fft.pixels_clipped) == (
        direct.bias,
        direct.rmse,
        direct.r2,
        direct.pixels_used,
        direct.pixels_clipped,
    )
    assert fft.max_error == pytest.approx(direct.max_error, rel=1e-12)


def test_fft_route_recovers_the_kernel_of_an_exact_pair(fft_route):
    """Without noise the learned kernel is the one that made the target."""
    rng = np.random.default_rng(5)
    x = rng.random((33, 41))
    k = rng.random((6, 7)) + np.arange(42).reshape(6, 7)
    y = ndi.correlate(x, k, mode="nearest")  # anchored at (kh//2, kw//2) as learn is
    result = learn_kernel(x, y, (6, 7))
    np.testing.assert_allclose(result.weights, k, rtol=1e-9)


def test_cholesky_and_eigendecomposition_agree_on_a_large_system(monkeypatch):
    """A 21×21 fit (441 unknowns, Cholesky) equals the eigendecomposition's answer."""
    rng = np.random.default_rng(6)
    x = rng.random((80, 90))
    y = ndi.uniform_filter(x, 21) + rng.normal(0, 1e-3, x.shape)
    fast = learn_kernel(x, y, 21)
    monkeypatch.setattr(lstsq, "CHOLESKY_FROM", 10**9)
    slow = learn_kernel(x, y, 21)
    assert fast.rank == slow.rank == 441
    np.testing.assert_allclose(fast.weights, slow.weights, rtol=1e-8, atol=1e-12)


def test_flat_windows_left_out_are_summed_exactly():
    """Windows of one value (flat black and white regions, where blurs clip) take a shortcut:
    the same sums as their products."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (2, 30, 28)).astype(np.float64)
    x[0, 3:15, 2:20] = 255.0
    x[1, 10:25, 5:27] = 0.0
    x[1, 0:8, 0:9] = 7.0
    y = rng.integers(0, 256, (2, 27, 26)).astype(np.float64)
    kept = rng.random(y.shape) < 0.8
    kept[0, 3:12, 2:17] = False  # flat windows of 255 among those left out
    kept[1, 10:22, 5:24] = False  # and of 0
    kept[1, 0:5, 0:6] = False  # and of 7
    got = augmented_gram(x, y, kept, 4, 3, integer=True)
    np.testing.assert_array_equal(got, reference(x, y, kept, 4, 3))
    most = np.zeros(y.shape, dtype=bool)
    most[0, 3:12, 2:17] = most[1, 10:22, 5:24] = True
    got = augmented_gram(x, y, ~most, 4, 3, integer=True)  # most left out: kept ones summed
    np.testing.assert_array_equal(got, reference(x, y, ~most, 4, 3))
