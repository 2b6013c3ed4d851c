"""``correlate(..., output=np.uint8)``: integers rounded half to even and clipped, in one pass.

Bit for bit the float result followed by ``np.rint`` and ``np.clip`` on every path, against
scipy.ndimage in float64 (a level apart only where the value is a close call) and against
OpenCV's ``filter2D`` u8 → u8 (``saturate_cast``), whole arrays, borders included.
"""

from __future__ import annotations

import numpy as np
import pytest

import convtool

import references
from conftest import distinct_kernel, random_image

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]
# (method, threads): auto alone takes numpy for this small work, with a thread count the core
PATHS = [("auto", None), ("auto", 1), ("direct", None), ("separable", None), ("fft", 2)]


def float_then_rounded(x, k, dtype, operation=convtool.correlate, **kwargs) -> np.ndarray:
    """The documented meaning: the float result, ``np.rint``, ``np.clip`` to the type's range."""
    top = np.iinfo(dtype).max
    return np.clip(np.rint(operation(x, k, **kwargs)), 0, top).astype(dtype)


def kernel_for(method: str, kh: int, kw: int, seed: int) -> np.ndarray:
    """An asymmetric kernel with distinct entries (rank 1 for ``separable``), Σ|K| = 1.6 so
    that results run past both ends of the samples' range and get clipped."""
    if method == "separable":
        k = np.outer([1.0, -3.0, 7.0, 2.0, -5.0][:kh], 2.0 ** np.arange(kw) * (-1) ** np.arange(kw))
    else:
        k = distinct_kernel(kh, kw, seed=seed)
    return 1.6 * k / np.abs(k).sum()


@pytest.mark.parametrize(("method", "threads"), PATHS)
@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize(
    ("dtype", "channels", "out"),
    [(np.uint8, 3, np.uint8), (np.uint16, 0, np.uint16), (np.uint8, 0, np.uint16),
     (np.float32, 2, np.uint8), (np.float64, 3, np.uint8)],
)  # fmt: skip
@pytest.mark.parametrize("operation", [convtool.correlate, convtool.convolve])
def test_integer_output_is_the_float_result_rounded_and_clipped(
    operation, dtype, channels, out, mode, method, threads
):
    """Every path, border, input and output type: bit for bit ``np.clip(np.rint(float))``."""
    x = random_image((13, 10) + ((channels,) if channels else ()), dtype, seed=41)
    if dtype in (np.float32, np.float64):
        x = (x * 300 + 100).astype(dtype)  # samples far past both ends of uint8
    k = kernel_for(method, 3, 4, seed=42)
    kwargs = {"border": mode, "cval": 37.5, "method": method, "threads": threads}
    got = operation(x, k, output=out, **kwargs)
    assert got.dtype == out
    expected = float_then_rounded(x, k, out, operation, **kwargs)
    np.testing.assert_array_equal(got, expected)
    into = np.full(got.shape, 7, out)
    assert operation(x, k, output=into, **kwargs) is into
    np.testing.assert_array_equal(into, expected)


@pytest.mark.parametrize(("method", "threads"), PATHS)
@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (9, 14, 3), (16, 5)])
def test_integer_output_matches_scipy(shape, mode, method, threads):
    """Against scipy.ndimage in float64, rounded and clipped: equal but for close calls (a value
    within float32 rounding of a half-integer), which may take the neighbouring level."""
    x = random_image(shape, np.uint8, seed=sum(shape))
    k = kernel_for(method, 3, 4, seed=43)
    if mode == "valid" and (shape[0] < 3 or shape[1] < 4):
        return
    got = convtool.correlate(x, k, border=mode, cval=37.5, method=method, threads=threads,
                             output=np.uint8)  # fmt: skip
    if mode == "valid":
        exact = references.correlate(x, k, "valid")
    else:
        exact = references.scipy_correlate(x, k, mode, 37.5)
    expected = np.clip(np.rint(exact), 0, 255)
    band = 1e-2 if method == "fft" else 1e-4  # the float32 sums' error, in levels
    close_call = np.abs(np.abs(exact - np.floor(exact)) - 0.5) < band
    diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
    assert diff.max(initial=0) <= 1
    np.testing.assert_array_equal(got[~close_call], expected[~close_call])


def test_integer_output_rounds_half_to_even():
    """Exact halves go to the even level (2.5 → 2, 3.5 → 4), as np.rint and OpenCV round."""
    x = np.array([[5, 7, 9, 11, 1, 3]], np.uint8)
    got = convtool.correlate(x, [[0.5]], output=np.uint8)
    np.testing.assert_array_equal(got, [[2, 4, 4, 6, 0, 2]])


def test_integer_output_clips_where_scipy_wraps():
    """Values past the range are clipped (scipy's ``output=np.uint8`` truncates and wraps)."""
    x = np.array([[0, 5, 250, 255]], np.uint8)
    np.testing.assert_array_equal(convtool.correlate(x, [[-1.0]], output=np.uint8), [[0] * 4])
    np.testing.assert_array_equal(
        convtool.correlate(x, [[1.5]], output=np.uint8), [[0, 8, 255, 255]]
    )
    np.testing.assert_array_equal(
        convtool.correlate(x.astype(np.uint16), [[300.0]], output=np.uint16),
        [[0, 1500, 65535, 65535]],
    )


@pytest.mark.parametrize("mode", ["mirror", "reflect", "nearest", "constant"])  # no wrap in cv2
@pytest.mark.parametrize("ksize", [(3, 3), (5, 5), (4, 7), (15, 15)])
def test_integer_output_matches_opencv_filter2d(ksize, mode):
    """uint8 → uint8 against ``cv2.filter2D`` (``saturate_cast``: round, clip), whole arrays
    including borders: within one grey level (OpenCV sums in another order, and its border
    modes are scipy's under other names)."""
    cv2 = pytest.importorskip("cv2")
    borders = {
        "mirror": cv2.BORDER_REFLECT_101,
        "reflect": cv2.BORDER_REFLECT,
        "nearest": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
    }
    x = random_image((40, 37, 3), np.uint8, seed=44)
    k = kernel_for("direct", *ksize, seed=45)
    kh, kw = ksize
    got = convtool.correlate(x, k, border=mode, output=np.uint8, threads=1)
    theirs = cv2.filter2D(
        x, -1, k.astype(np.float32), anchor=(kw // 2, kh // 2), borderType=borders[mode]
    )
    diff = np.abs(got.astype(np.int64) - theirs.astype(np.int64))
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99  # a level apart only where the sum is a close call


def test_integer_output_of_an_empty_image():
    """An empty image gives an empty result of the type asked for, or the array given."""
    x = np.zeros((0, 5), np.uint8)
    got = convtool.correlate(x, "sobel-x", output=np.uint8)
    assert got.shape == (0, 5)
    assert got.dtype == np.uint8
    into = np.empty((0, 5), np.uint16)
    assert convtool.correlate(x, "sobel-x", output=into) is into


def test_output_as_the_float_dtype_is_the_plain_result():
    """``output=`` the result's own float type (as scipy users write it) changes nothing."""
    x = random_image((8, 9), np.uint8, seed=46)
    np.testing.assert_array_equal(
        convtool.correlate(x, "sobel-x", output=np.float32), convtool.correlate(x, "sobel-x")
    )
    y = random_image((8, 9), np.float64, seed=46)
    got = convtool.correlate(y, "sobel-x", output="float64")
    assert got.dtype == np.float64


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (np.int16, r"output dtype int16 is not one this call writes: it computes in float32; "
                   r"pass np.float32, or np.uint8 / np.uint16"),
        (np.float64, "output dtype float64 is not one"),
        (">u2", "output dtype >u2 is not one"),
        ("pixels", "output must be a numpy array or a dtype; got str 'pixels'"),
        (3, "output must be a numpy array or a dtype; got int 3"),
        (np.empty((6, 8), np.int8), r"dtype int8; this call returns shape \(6, 8\) and dtype "
                                    r"float32 \(or uint8 / uint16, rounded and clipped\)"),
        (np.empty((6, 7), np.uint8), r"pass np.empty\(\(6, 8\), np.uint8\)"),
    ],
)  # fmt: skip
def test_integer_output_refused(output, match):
    """An output type the call cannot write says what came in and what to pass."""
    with pytest.raises(convtool.UsageError, match=match):
        convtool.correlate(np.zeros((6, 8), np.uint8), "laplacian", output=output)


def test_the_python_api_pages_examples():
    """docs/python-api.md, Integer output: convtool's values, and scipy's truncation and
    wrap-around it is contrasted with (6.5 → 6, 202.5 → 202 both; −5 → 0 or 251; 300 → 255
    or 44)."""
    ndi = pytest.importorskip("scipy.ndimage")
    x = np.array([[3, 5, 200]], np.uint8)
    got = convtool.correlate(x, [[0.5, 1.0]], border="valid", output=np.uint8)
    np.testing.assert_array_equal(got, [[6, 202]])
    np.testing.assert_array_equal(convtool.correlate(x, [[-1.0]], output=np.uint8), [[0, 0, 0]])
    v = np.array([[1, 120, 81]], np.uint8)
    k = np.array([[-5.0, 2.5, 2.5]])
    ours = convtool.correlate(v, k[:, :1], output=np.uint8)[0, 0]
    theirs = ndi.correlate(v, k[:, :1], output=np.uint8)[0, 0]
    assert (ours, theirs) == (0, 251)
    ours = convtool.correlate(v, k[:, 1:2], output=np.uint8)[0, 1]
    theirs = ndi.correlate(v, k[:, 1:2], output=np.uint8)[0, 1]
    assert (ours, theirs) == (255, 44)
    theirs = ndi.correlate(x, np.array([[0.5, 1.0]]), output=np.uint8, mode="nearest")
    assert theirs[0, 2] == 202  # 202.5 truncated; convtool rounds it to the even 202 too
