"""The Gram matrix from runs along rows (learn.runs) and the layer's normal equations (learn.mix)
against the plain products of patch matrices built by loops."""

from __future__ import annotations

import numpy as np
import pytest

from convtool.learn.gram import augmented_gram, window_gram
from convtool.learn.mix import layer_normals, mix_pair
from convtool.learn.report import quadratic
from convtool.learn.runs import masked_gram, min_run, runs

CASES = [
    # (channels, H, W, kh, kw, share of samples in the mask)
    (1, 20, 30, 3, 4, 0.5),
    (3, 17, 23, 4, 5, 0.9),
    (2, 12, 40, 2, 7, 1.0),
    (1, 10, 10, 3, 1, 0.7),
    (1, 9, 9, 2, 2, 0.8),
    (3, 30, 31, 5, 5, 0.3),
    (1, 8, 8, 8, 8, 1.0),
]


def window_rows(x: np.ndarray, where: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The windows of the marked samples of ``x`` (H, W, C), (channel, row, column) order."""
    rows = []
    for i, j in zip(*np.nonzero(where), strict=True):
        rows.append(
            [x[i + a, j + b, c] for c in range(x.shape[2]) for a in range(kh) for b in range(kw)]
        )
    return np.array(rows, dtype=np.float64).reshape(-1, x.shape[2] * kh * kw)


@pytest.mark.parametrize("case", CASES)
def test_masked_gram_of_integers_is_the_patch_products_exactly(case):
    """Long runs (whole rows among them), short ones and lone samples: the same integers."""
    c, h, w, kh, kw, share = case
    rng = np.random.default_rng(sum(case[:5]))
    x = rng.integers(0, 256, (h, w, c)).astype(np.float64)
    ho, wo = h - kh + 1, w - kw + 1
    ys = rng.integers(0, 256, (ho, wo, 2)).astype(np.float64)
    where = rng.random((ho, wo)) < share
    where[ho // 2, :] = True  # a whole row
    v = window_rows(x, where, kh, kw)
    u = np.c_[v, np.ones(len(v)), ys[where]]
    np.testing.assert_array_equal(masked_gram(x, ys, where, kh, kw), u.T @ u)


def test_masked_gram_of_floats_with_a_clipped_blob():
    """Float planes with a blob of samples left out (long runs, as a clipped region makes)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 45, 1))
    ys = rng.standard_normal((34, 38, 1))
    where = np.zeros((34, 38), dtype=bool)
    where[5:20, 3:30] = True
    where[25, 7] = where[30, 10:12] = True
    v = window_rows(x, where, 7, 8)
    u = np.c_[v, np.ones(len(v)), ys[where]]
    expected = u.T @ u
    got = masked_gram(x, ys, where, 7, 8)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_runs_are_the_rows_stretches():
    where = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    rows, starts, ends = runs(where)
    assert list(zip(rows, starts, ends, strict=True)) == [(0, 0, 2), (0, 3, 4), (2, 0, 4)]
    assert min_run(2) is None and min_run(41) == 3 and min_run(5) == 4


def plain_normals(x, y, kept, kh, kw, x_scale=1.0, y_scale=1.0):
    """Each output's Σ u uᵀ of u = (window, 1, y_o) over its kept samples, by loops."""
    ho, wo = y.shape[:2]
    every = np.ones((ho, wo), dtype=bool)
    v = window_rows(x.astype(np.float64), every, kh, kw) * x_scale
    out = []
    for o in range(y.shape[2]):
        u = np.c_[v, np.ones(len(v)), y[..., o].ravel() * y_scale][kept[..., o].ravel()]
        out.append(u.T @ u)
    return out


def test_layer_normals_match_the_patch_products_with_clipped_samples():
    """A 3→2 layer's normal equations, floats, an output clipped at both ends."""
    rng = np.random.default_rng(11)
    x = rng.random((21, 26, 3))
    y = rng.random((21, 26, 2)) * 1.4 - 0.2
    y[4:9, 3:20, 0] = 1.0  # a clipped blob: long runs
    kh, kw = 3, 5
    pair = mix_pair(x, y, (kh, kw), (0.0, 1.0), False, ("x", "y"), (1, 2))
    ya = y[1 : 1 + 19, 2 : 2 + 22]
    kept = (ya > 0) & (ya < 1)
    assert not kept.all()
    for got, expected in zip(
        layer_normals([pair], kh, kw, None), plain_normals(x, ya, kept, kh, kw), strict=True
    ):
        np.testing.assert_allclose(got.gram, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_layer_normals_of_8_bit_pairs_are_the_scaled_integer_sums():
    """8-bit pairs: the sums are exact integers, scaled once; two pairs of different sizes."""
    rng = np.random.default_rng(12)
    pairs, expected = [], None
    for h, w in ((19, 23), (16, 30)):
        x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        y = rng.integers(0, 256, (h - 3, w - 2, 3), dtype=np.uint8)
        pairs.append(mix_pair(x, y, (4, 3), None, False, ("x", "y")))
        kept = (y > 0) & (y < 255)
        s = 1 / 255
        scale = np.array([s] * 36 + [1.0, s])
        parts = [
            g.astype(np.float64) * np.outer(scale, scale)
            for g in plain_normals(x.astype(np.int64), y.astype(np.int64), kept, 4, 3)
        ]
        expected = (
            parts if expected is None else [a + b for a, b in zip(expected, parts, strict=True)]
        )
    got = layer_normals(pairs, 4, 3, None)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.gram, e, rtol=1e-15, atol=0)


def test_exact_quadratic_form_in_int64_limbs_is_the_python_ints_one():
    """wᵀ G w from int64 limbs equals the sum over Python ints, G up to 2**62 and w of any size,
    negative entries included."""
    rng = np.random.default_rng(13)
    for n, top in ((3, 2**20), (40, 2**52), (200, 2**61)):
        g = rng.integers(-top, top, (n, n), dtype=np.int64)
        w = [int(v) for v in rng.integers(-(2**62), 2**62, n)]
        w[0], w[-1] = 0, -(3**140)
        wi = np.array(w, dtype=object)
        assert quadratic(g, w) == int(wi @ (g.astype(object) @ wi))
        assert quadratic(g.astype(object), w) == int(wi @ (g.astype(object) @ wi))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_augmented_gram_reads_integer_planes_as_they_are(dtype):
    """Stored integers (no float64 copy of the planes) give the sums of their float64 copy."""
    rng = np.random.default_rng(14)
    top = np.iinfo(dtype).max
    x = rng.integers(0, top, (3, 23, 29), endpoint=True).astype(dtype)
    y = rng.integers(0, top, (3, 18, 23), endpoint=True).astype(dtype)
    kept = (y > 0) & (y < top) & (rng.random(y.shape) < 0.9)
    kept[1, 4:12, 2:20] = False  # long runs left out
    got = augmented_gram(x, y, kept, 6, 7, integer=True)
    expected = augmented_gram(x.astype(np.float64), y.astype(np.float64), kept, 6, 7, integer=True)
    np.testing.assert_array_equal(got, expected)
    g = np.full((44, 44), np.nan)
    window_gram(x, x, 6, 7, integer=True, out=g[:42, :42])  # into a view of a larger matrix
    whole = window_gram(x.astype(np.float64), x.astype(np.float64), 6, 7, integer=True)
    np.testing.assert_array_equal(g[:42, :42], whole)
    assert np.isnan(g[42:]).all() and np.isnan(g[:, 42:]).all()
