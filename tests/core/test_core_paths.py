"""The fast paths of the core against the references, whole arrays, borders included.

The written-out 3×3 kernel, the tap tables (pairs of rows and a last single row), the
fused separable pass, the FFT path and the fused integer output each get odd, even and
non-square sizes, images smaller than the kernel, gray and multi-channel images and every dtype.
No timing here: speed is measured by ``benchmarks/run.py``.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import convtool
from convtool.core.correlate import correlate_to_integer
from convtool.core.dispatch import choose_method, separable_factors

import references
from conftest import assert_close, distinct_kernel, random_image

dispatch = importlib.import_module("convtool.core.dispatch")
paths = importlib.import_module("convtool.core.paths")

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]
# every dtype once gray and once with channels, across the tests
PIXELS = [(np.uint8, 0), (np.uint16, 3), (np.float32, 2), (np.float64, 3)]
# rows odd and even (a last single row, or only pairs), columns narrower and wider than kernels
SHAPES = [(1, 1), (2, 3), (5, 4), (8, 13), (13, 6)]


def reference(x: np.ndarray, k: np.ndarray, mode: str, cval: float = 0.0) -> np.ndarray:
    """scipy.ndimage channel by channel in float64; the plain-loop corr2d for ``valid``."""
    if mode == "valid":
        return references.correlate(x, k, "valid")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return np.stack(
            [ndi.correlate(x[..., c], k, mode=mode, cval=cval) for c in range(x.shape[2])], -1
        )
    return ndi.correlate(x, k, mode=mode, cval=cval)


def fits(shape: tuple[int, ...], ksize: tuple[int, int]) -> bool:
    return ksize[0] <= shape[0] and ksize[1] <= shape[1]


def cval_for(x: np.ndarray) -> float:
    """A cval that is not one of the image's values (and not representable in uint8)."""
    return 0.75 if x.dtype.kind == "f" else 77.5


@pytest.mark.parametrize(("dtype", "channels"), PIXELS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_written_out_and_common_sizes_match_scipy(mode, ksize, shape, channels, dtype):
    """The 3×3 written out in full and the common 5×5 (tap tables), in pairs of rows and a last
    single row."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape))
    k = distinct_kernel(*ksize, seed=3)
    if mode == "valid" and not fits(shape, ksize):
        return
    cval = cval_for(x)
    got = convtool.correlate(x, k, border=mode, cval=cval, method="direct")
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert_close(got, reference(x, k, mode, cval), k, x)


@pytest.mark.parametrize(("dtype", "channels"), PIXELS)
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("ksize", [(1, 3), (2, 2), (4, 5), (7, 3), (3, 9)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_tap_tables_match_scipy(mode, ksize, shape, channels, dtype):
    """Any other size runs from tap tables, eight taps at a time, zero taps left out."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape) + 1)
    k = distinct_kernel(*ksize, seed=4)
    k[0, -1] = 0.0  # a zero tap, skipped by the tables
    if mode == "valid" and not fits(shape, ksize):
        return
    cval = cval_for(x)
    got = convtool.correlate(x, k, border=mode, cval=cval, method="direct")
    assert_close(got, reference(x, k, mode, cval), k, x)


@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (4, 6)])
@pytest.mark.parametrize("mode", MODES)
def test_long_rows_and_many_chunks(mode, ksize):
    """Images taller and wider than the tiny ones: interior, edges and chunks of rows meet."""
    x = random_image((67, 45, 3), np.float32, seed=11)
    k = distinct_kernel(*ksize, seed=5)
    for threads in (1, 2):
        got = convtool.correlate(x, k, border=mode, cval=-1.5, method="direct", threads=threads)
        assert_close(got, reference(x, k, mode, -1.5), k, x)


@pytest.mark.parametrize(
    "method", ["direct", "separable", "fft"], ids=["direct", "separable", "fft"]
)
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (4, 7)])
def test_same_result_whatever_the_thread_count(method, ksize):
    """Rows are paired and chunked the same way for any thread count: results are identical."""
    x = random_image((41, 37, 3), np.float32, seed=12)
    k = np.outer(np.arange(1.0, ksize[0] + 1), np.linspace(-1, 2, ksize[1]))
    one = convtool.correlate(x, k, method=method, threads=1)
    two = convtool.correlate(x, k, method=method, threads=2)
    np.testing.assert_array_equal(one, two)


def separable_kernel(kh: int, kw: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors with distinct, asymmetric entries (so that flips and transposes show)."""
    u = np.array([1.0, -2.0, 3.5, 0.5, -1.25, 2.0, 4.0, -3.0, 1.5])[:kh]
    v = np.array([2.0, 0.75, -1.0, 3.0, -0.5, 1.25, -2.5, 0.25, 5.0])[:kw]
    return u, v


@pytest.mark.parametrize(("dtype", "channels"), PIXELS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (7, 12), (16, 5)])
@pytest.mark.parametrize("ksize", [(1, 2), (3, 3), (4, 5), (9, 2)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_fused_separable_matches_scipy(mode, ksize, shape, channels, dtype):
    """Rows by v into a ring, then columns by u, fused: equals the 2-D K = u vᵀ."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape) + 2)
    u, v = separable_kernel(*ksize)
    k = np.outer(u, v)
    assert separable_factors(k) is not None
    if mode == "valid" and not fits(shape, ksize):
        return
    cval = cval_for(x)
    got = convtool.correlate(x, k, border=mode, cval=cval, method="separable")
    assert_close(got, reference(x, k, mode, cval), k, x)


def fft_close(actual: np.ndarray, expected: np.ndarray, k: np.ndarray, x: np.ndarray) -> None:
    """The FFT path's promise: within 1e-4 of Σ|K|·max|X| (float32), 1e-10 (float64)."""
    assert actual.shape == expected.shape
    rel = 1e-10 if actual.dtype == np.float64 else 1e-4
    scale = np.abs(k).sum() * max(1.0, float(np.abs(np.asarray(x, float)).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rel * scale)


@pytest.mark.parametrize(("dtype", "channels"), PIXELS)
@pytest.mark.parametrize("shape", [(1, 1), (6, 9), (23, 17)])
@pytest.mark.parametrize("ksize", [(1, 1), (2, 3), (8, 11), (31, 31)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_fft_matches_scipy(mode, ksize, shape, channels, dtype):
    """method="fft": every border mode, constant with its cval, valid; kernels of any size."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape) + 3)
    k = distinct_kernel(*ksize, seed=6)
    if mode == "valid" and not fits(shape, ksize):
        with pytest.raises(convtool.KernelError, match="larger than the"):
            convtool.correlate(x, k, border=mode, method="fft")
        return
    cval = cval_for(x)
    got = convtool.correlate(x, k, border=mode, cval=cval, method="fft")
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    fft_close(got, reference(x, k, mode, cval), k, x)


@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize("ksize", [(4, 3), (9, 2)])
def test_fft_tiles_match_direct(mode, ksize):
    """Overlap-save tiles across the image, the last ones cut short, equal the direct path."""
    x = random_image((70, 51, 3), np.float32, seed=13)
    k = distinct_kernel(*ksize, seed=7)
    _, (t0, t1) = dispatch.fft_tiles(70, 51, *ksize)
    assert t0 < 60 and t1 < 45  # several tiles each way
    fft = convtool.correlate(x, k, border=mode, cval=2.0, method="fft")
    direct = convtool.correlate(x, k, border=mode, cval=2.0, method="direct")
    fft_close(fft, direct, k, x)


def test_fft_large_kernel_on_larger_image():
    """A 31×31 kernel across several 512-point tiles, against scipy."""
    x = random_image((600, 70), np.float32, seed=14)
    k = np.random.default_rng(8).standard_normal((31, 31))
    _, (t0, _) = dispatch.fft_tiles(600, 70, 31, 31)
    assert t0 < 600
    got = convtool.correlate(x, k, border="mirror", method="fft")
    fft_close(got, reference(x, k, "mirror"), k, x)


def test_convolve_through_fft():
    """convolve flips the kernel on every path."""
    x = random_image((12, 15), np.float64, seed=15)
    k = distinct_kernel(3, 4, seed=9)
    np.testing.assert_allclose(
        convtool.convolve(x, k, method="fft"),
        convtool.correlate(x, k[::-1, ::-1], method="direct"),
        atol=1e-10 * np.abs(k).sum() * np.abs(x).max(),
    )


@pytest.mark.parametrize(
    ("shape", "ksize", "expected"),
    [
        ((2160, 3840, 3), (3, 3), "direct"),
        ((2160, 3840, 3), (15, 15), "direct"),
        ((2160, 3840, 3), (31, 31), "fft"),
        ((2160, 3840, 3), (61, 61), "fft"),
        ((40, 40), (31, 31), "direct"),
        ((40, 40), (3, 40), "direct"),
    ],
)
def test_cost_model_choice(shape, ksize, expected):
    """auto: direct for small kernels and small images, FFT for large kernels on large images
    (the choice made once the kernel is known not to be separable)."""
    assert choose_method(shape, ksize, "nonseparable") == expected


def test_auto_uses_separable_then_falls_back():
    """auto tries the rank-1 factors first; a full-rank kernel goes direct or FFT."""
    assert choose_method((100, 100), (5, 5), "auto") == "separable"
    assert choose_method((100, 100), (3, 3), "auto") == "direct"
    x = random_image((20, 25, 3), np.float32, seed=16)
    k = distinct_kernel(5, 5, seed=10)
    assert_close(convtool.correlate(x, k), reference(x, k, "reflect"), k, x)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=9),
        elements=st.floats(-100, 100),
    ),
    k=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=7),
        elements=st.floats(-10, 10),
    ),
    mode=st.sampled_from([*MODES, "valid"]),
    method=st.sampled_from(["direct", "fft"]),
    cval=st.floats(-5, 5),
)
def test_property_paths_match_reference(x, k, mode, method, cval):
    """Random shapes, kernels, modes and paths against the plain-loop reference."""
    if mode == "valid" and not fits(x.shape, k.shape):
        return
    got = convtool.correlate(x, k, border=mode, cval=cval, method=method)
    expected = references.correlate(x, k, mode, cval)
    if method == "fft":
        fft_close(got, expected, k, x)
    else:
        assert_close(got, expected, k, x)


# --- fused integer output -------------------------------------------------------------------


def integer_reference(
    x, k, mode, cval, scale, bias, map_, in_max, out_max, band=1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """The documented formula in float64 with numpy, and where rounding is a close call (the
    value within ``band`` of a half-integer)."""
    y = scale * reference(np.asarray(x, np.float64) / in_max, k, mode, cval / in_max) + bias
    if map_ == "abs":
        y = np.abs(y)
    z = y * out_max
    exact = np.clip(np.rint(z), 0, out_max)
    close_call = np.abs(np.abs(z - np.floor(z)) - 0.5) < band
    return exact, close_call


def assert_integer_output(got, x, k, mode, cval, scale, bias, map_, in_max, out_max, band=1e-3):
    """Equal to the formula, but for close calls, which may go to the neighbouring level."""
    expected, close_call = integer_reference(
        x, k, mode, cval, scale, bias, map_, in_max, out_max, band
    )
    assert got.dtype == (np.uint8 if out_max <= 255 else np.uint16)
    assert got.shape == expected.shape
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    assert diff.max(initial=0) <= 1
    np.testing.assert_array_equal(got[~close_call], expected[~close_call])


@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize(
    "kernel",
    ["written-out 3x3", "taps 5x5", "taps 4x5", "separable 3x4", "fft 9x9"],
)
@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (12, 9, 3)])
def test_integer_output_every_path(kernel, mode, shape):
    """uint8 → uint8 through every path equals the formula (clip, half-to-even, clamp)."""
    x = random_image(shape, np.uint8, seed=sum(shape) + 4)
    kind, size = kernel.split()
    kh, kw = (int(n) for n in size.split("x"))
    if kind == "separable":
        k = np.outer(*separable_kernel(kh, kw))
    else:
        k = distinct_kernel(kh, kw, seed=11)
    k = 2 * k / np.abs(k).sum()  # results from about −2 to 2: both ends get clamped
    method = {"written-out": "direct", "taps": "direct", "separable": "separable"}.get(kind, kind)
    if mode == "valid" and not fits(shape, (kh, kw)):
        return
    got = correlate_to_integer(x, k, border=mode, cval=30, bias=0.25, method=method)
    band = 0.05 if method == "fft" else 1e-3  # the FFT's float32 error, in output levels
    assert_integer_output(got, x, k, mode, 30, 1.0, 0.25, "clip", 255, 255, band)


@pytest.mark.parametrize(
    ("dtype", "in_max", "out_max"),
    [
        (np.uint8, 255, 255),
        (np.uint16, 65535, 65535),
        (np.uint16, 65535, 255),
        (np.uint8, 255, 65535),
        (np.float32, 1.0, 255),
        (np.float64, 1.0, 1023),
    ],
)
@pytest.mark.parametrize("map_", ["clip", "abs"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_integer_output_depths_and_maps(dtype, in_max, out_max, map_, method):
    """Every input and output depth, both maps, with a scale that sends values past both ends."""
    x = random_image((11, 14, 3), dtype, seed=17)
    if dtype in (np.float32, np.float64):
        x = np.abs(x) / 4
    k = distinct_kernel(3, 4, seed=12)
    k = 3 * k / np.abs(k).sum()
    got = correlate_to_integer(
        x, k, scale=-1.5, bias=0.4, map=map_, in_max=in_max, out_max=out_max, method=method
    )
    # float32 sums: ~1e-6 of the full scale (FFT: 1e-6 relative is ~0.2 of 65535 levels)
    band = 0.5 if method == "fft" else max(1e-3, 1e-6 * out_max)
    assert_integer_output(got, x, k, "reflect", 0.0, -1.5, 0.4, map_, in_max, out_max, band)
    assert (got == out_max).any()  # clamped at the top
    if map_ == "clip":
        assert (got == 0).any()  # and at the bottom


def test_integer_output_rounds_half_to_even():
    """Exact halves round to even, as numpy.rint: 0.5 → 0, 1.5 → 2, 2.5 → 2, 3.5 → 4."""
    x = np.array([[1, 3, 5, 7]], np.uint16)
    got = correlate_to_integer(x, [[0.5]], in_max=1000, out_max=1000)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, [[0, 2, 2, 4]])


def test_integer_output_defaults_follow_the_image():
    """in_max and out_max default to the image's own range: identity leaves it unchanged."""
    for dtype in (np.uint8, np.uint16):
        x = random_image((9, 8, 3), dtype, seed=18)
        got = correlate_to_integer(x, [[1.0]])
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, x)


def test_integer_output_threads_and_chunks():
    """A taller image over 1 and 2 threads gives the same bytes, equal to the formula."""
    x = random_image((75, 33, 3), np.uint8, seed=19)
    k = distinct_kernel(3, 3, seed=13)
    k = k / np.abs(k).sum()
    one = correlate_to_integer(x, k, map="abs", threads=1)
    two = correlate_to_integer(x, k, map="abs", threads=2)
    np.testing.assert_array_equal(one, two)
    assert_integer_output(one, x, k, "reflect", 0.0, 1.0, 0.0, "abs", 255, 255)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"map": "shift"}, "unknown map 'shift'"),
        ({"out_max": 0}, "out_max must be an integer from 1 to 65535"),
        ({"out_max": 70000}, "out_max must be an integer from 1 to 65535"),
        ({"out_max": 2.5}, "out_max must be an integer"),
        ({"in_max": 0}, "in_max must be positive"),
        ({"scale": float("inf")}, "scale"),
        ({"bias": float("nan")}, "bias"),
        ({"method": "fast"}, "unknown method"),
        ({"threads": 0}, "threads must be between 1"),
    ],
)
def test_integer_output_bad_arguments(kwargs, match):
    with pytest.raises(convtool.UsageError, match=match):
        correlate_to_integer(np.zeros((4, 4), np.uint8), "laplacian", **kwargs)


# --- small work with numpy ------------------------------------------------------------------


@pytest.fixture
def numpy_path(monkeypatch):
    """``method="auto"`` takes the numpy path whatever the size of the work."""
    monkeypatch.setattr(dispatch, "NUMPY_WORK", float("inf"))


@pytest.mark.parametrize(("dtype", "channels"), PIXELS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (1, 3), (2, 2), (4, 5), (7, 3)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_numpy_path_matches_scipy(numpy_path, mode, ksize, shape, channels, dtype):
    """Small work done with numpy: odd, even and non-square kernels, images smaller than the
    kernel (padding past the far edge), every dtype."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape) + 7)
    k = distinct_kernel(*ksize, seed=21)
    k[0, -1] = 0.0  # a zero tap, left out
    if mode == "valid" and not fits(shape, ksize):
        return
    cval = cval_for(x)
    got = convtool.correlate(x, k, border=mode, cval=cval)
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert_close(got, reference(x, k, mode, cval), k, x)
    flipped = reference(x, k[::-1, ::-1], mode, cval)
    assert_close(convtool.convolve(x, k, border=mode, cval=cval), flipped, k, x)


@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize("ksize", [(3, 3), (4, 5)])
@pytest.mark.parametrize("shape", [(1, 1), (7, 10), (12, 9, 3)])
@pytest.mark.parametrize("map_", ["clip", "abs"])
def test_numpy_path_integer_output(numpy_path, map_, shape, ksize, mode):
    """uint8 → uint8 with numpy equals the formula, both maps, clamped at both ends."""
    x = random_image(shape, np.uint8, seed=sum(shape) + 8)
    k = distinct_kernel(*ksize, seed=22)
    k = 2 * k / np.abs(k).sum()
    if mode == "valid" and not fits(shape, ksize):
        return
    got = correlate_to_integer(x, k, border=mode, cval=30, bias=0.25, map=map_)
    assert_integer_output(got, x, k, mode, 30, 1.0, 0.25, map_, 255, 255)


@pytest.mark.parametrize(
    ("dtype", "in_max", "out_max"),
    [(np.uint16, 65535, 65535), (np.uint8, 255, 65535), (np.float64, 1.0, 1023)],
)
def test_numpy_path_integer_depths(numpy_path, dtype, in_max, out_max):
    """uint16 and float inputs, 16-bit and odd output ranges, a negative scale."""
    x = random_image((11, 14, 3), dtype, seed=23)
    if dtype == np.float64:
        x = np.abs(x) / 4
    k = distinct_kernel(3, 4, seed=24)
    k = 3 * k / np.abs(k).sum()
    got = correlate_to_integer(x, k, scale=-1.5, bias=0.4, in_max=in_max, out_max=out_max)
    assert_integer_output(got, x, k, "reflect", 0.0, -1.5, 0.4, "clip", in_max, out_max)


SMALL_THEN_LARGE = """
import sys
import numpy as np
import convtool
import convtool.core.correlate as cc
import convtool.core.dispatch as dispatch
paths = sys.modules["convtool.core.paths"]
numpy_calls = []
numpy_direct = paths.numpy_direct
paths.numpy_direct = lambda *args: numpy_calls.append(1) or numpy_direct(*args)
x = np.random.default_rng(0).random((64, 48, 3)).astype(np.float32)
k = np.random.default_rng(1).uniform(-1, 1, (5, 4))
u8 = (x * 255).astype(np.uint8)
small = convtool.correlate(x, k)
ints = cc.correlate_to_integer(u8, k / 4, scale=0.5, bias=0.1, map="abs")
assert "numba" not in sys.modules, "small work loaded numba"
assert len(numpy_calls) == 2
side = int((dispatch.NUMPY_WORK / 9) ** 0.5) + 1
big = np.zeros((side, side), np.float32)
convtool.correlate(big, np.ones((3, 3)))
assert "convtool._jit" in sys.modules
assert len(numpy_calls) == 2, "work past NUMPY_WORK done with numpy"
convtool.correlate(x[:9, :9], k, threads=1)
assert len(numpy_calls) == 2, "threads= did not ask for the core"
again = convtool.correlate(x, k)
ints_again = cc.correlate_to_integer(u8, k / 4, scale=0.5, bias=0.1, map="abs")
assert len(numpy_calls) == 4, "small work left numpy once numba was loaded"
assert small.tobytes() == again.tobytes() and ints.tobytes() == ints_again.tobytes()
direct = convtool.correlate(x, k, method="direct")
assert np.allclose(small, direct, atol=1e-5)
print("ok")
"""


def test_numpy_path_depends_on_the_call_alone():
    """In a fresh process, small filters run without numba; work past ``NUMPY_WORK`` (or a
    thread count) loads it; small work still goes to numpy afterwards, and
    gives the same bytes as before numba was loaded (float and integer outputs)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SMALL_THEN_LARGE], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_numpy_work_covers_a_512_rgb_picture_with_a_5x5_kernel():
    """``NUMPY_WORK`` is a number of multiply-adds: 512×512×3 values × 25 taps stay on numpy,
    one more row of work goes to numba; zero taps do not count."""
    k = np.ones((5, 5))
    assert dispatch.numpy_takes((512, 512, 3), k)
    side = int(dispatch.NUMPY_WORK // 25) + 1
    assert not dispatch.numpy_takes((side, 1), k)
    k[0] = 0.0
    assert dispatch.numpy_takes((int(dispatch.NUMPY_WORK // 20), 1), k)
