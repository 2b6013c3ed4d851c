"""correlate/convolve against the plain-loop reference and scipy.ndimage, borders included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import convtool
from convtool.core.dispatch import separable_factors

import references
from conftest import assert_close, distinct_kernel, random_image

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]
KERNEL_SIZES = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3), (4, 5), (7, 7), (15, 15)]
IMAGE_SHAPES = [(1, 1), (2, 3), (6, 8), (37, 53)]
DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [0, 3])
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("ksize", KERNEL_SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_matches_scipy(mode, ksize, shape, channels, dtype):
    """Every mode × kernel size × image shape × channels × dtype equals scipy.ndimage."""
    x = random_image(shape + ((channels,) if channels else ()), dtype, seed=sum(shape))
    k = distinct_kernel(*ksize)
    cval = 0.75 if x.dtype.kind == "f" else 77.0
    got = convtool.correlate(x, k, border=mode, cval=cval, method="direct")
    assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert_close(got, references.scipy_correlate(x, k, mode, cval), k, x)


@pytest.mark.parametrize("channels", [0, 2])
@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (5, 7)])
@pytest.mark.parametrize("ksize", [(1, 2), (2, 1), (2, 2), (3, 3), (4, 5), (6, 9)])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_matches_plain_loop_reference(mode, ksize, shape, channels):
    """The textbook's corr2d extended with borders, including kernels larger than the image."""
    x = random_image(shape + ((channels,) if channels else ()), np.float64, seed=3)
    k = distinct_kernel(*ksize, seed=1)
    if mode == "valid" and (ksize[0] > shape[0] or ksize[1] > shape[1]):
        with pytest.raises(convtool.KernelError, match="larger than the"):
            convtool.correlate(x, k, border=mode)
        return
    got = convtool.correlate(x, k, border=mode, cval=-2.5)
    assert_close(got, references.correlate(x, k, mode, cval=-2.5), k, x)


@pytest.mark.parametrize("mode", MODES)
def test_reference_agrees_with_scipy(mode):
    """The two oracles agree with each other, so neither can drift unnoticed."""
    x = random_image((4, 5), np.float64, seed=9)
    k = distinct_kernel(7, 6, seed=2)
    np.testing.assert_allclose(
        references.correlate(x, k, mode, 1.5), references.scipy_correlate(x, k, mode, 1.5)
    )


def test_textbook_corr2d():
    """D2L 7.2: corr2d([[0,1,2],[3,4,5],[6,7,8]], [[0,1],[2,3]]) is [[19,25],[37,43]]."""
    x = np.arange(9.0).reshape(3, 3)
    got = convtool.correlate(x, np.array([[0.0, 1.0], [2.0, 3.0]]), border="valid")
    np.testing.assert_array_equal(got, [[19.0, 25.0], [37.0, 43.0]])


def textbook_image() -> np.ndarray:
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x


def test_textbook_edge_detector():
    """The 6×8 image with columns 2–5 black: edge gives 1 in column 1 and −1 in column 5."""
    y = convtool.correlate(textbook_image(), "edge", border="valid")
    expected = np.zeros((6, 7))
    expected[:, 1] = 1
    expected[:, 5] = -1
    np.testing.assert_array_equal(y, expected)


def test_textbook_transposed_image_gives_zeros():
    """The transposed image has only horizontal edges: [1, −1] finds none (an 8×5 zero matrix)."""
    y = convtool.correlate(textbook_image().T, "edge", border="valid")
    np.testing.assert_array_equal(y, np.zeros((8, 5)))


def test_edge_same_size_keeps_shape():
    """Same-size borders keep (nh, nw); valid gives (nh − kh + 1) × (nw − kw + 1)."""
    x = textbook_image()
    assert convtool.correlate(x, "edge").shape == (6, 8)
    assert convtool.correlate(x, "box:3", border="valid").shape == (4, 6)


@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize("ksize", [(2, 2), (3, 3), (4, 5)])
def test_convolve_is_correlate_with_flipped_kernel(mode, ksize):
    """convolve(X, K) == correlate(X, K[::-1, ::-1]), as the textbook defines convolution."""
    x = random_image((9, 11, 3), np.float32, seed=5)
    k = distinct_kernel(*ksize, seed=4)
    np.testing.assert_array_equal(
        convtool.convolve(x, k, border=mode), convtool.correlate(x, k[::-1, ::-1], border=mode)
    )


@pytest.mark.parametrize("mode", MODES)
def test_convolve_matches_scipy_for_odd_kernels(mode):
    """For odd sizes, convtool's convolve is scipy.ndimage.convolve."""
    x = random_image((13, 10), np.float64, seed=6)
    k = distinct_kernel(3, 5, seed=7)
    expected = ndi.convolve(x, k, mode=mode, cval=0.5)
    assert_close(convtool.convolve(x, k, border=mode, cval=0.5), expected, k, x)


@pytest.mark.parametrize("spec", ["sobel-x", "sobel-y", "box:5", "gaussian:1.5", "edge-y"])
@pytest.mark.parametrize("mode", [*MODES, "valid"])
def test_separable_equals_direct(spec, mode):
    """Rank-1 kernels applied as two 1-D passes equal the direct 2-D pass."""
    x = random_image((23, 31, 3), np.float32, seed=8)
    k = convtool.parse_kernel(spec)
    sep = convtool.correlate(x, k, border=mode, cval=0.3, method="separable")
    direct = convtool.correlate(x, k, border=mode, cval=0.3, method="direct")
    assert_close(sep, direct, k, x)


def test_separable_factors_are_exact_for_integer_kernels():
    """Sobel factors into an integer column and row, so the separable path adds no error."""
    u, v = separable_factors(convtool.parse_kernel("sobel-x"))
    np.testing.assert_array_equal(np.outer(u, v), convtool.parse_kernel("sobel-x"))
    assert separable_factors(convtool.parse_kernel("laplacian")) is None


def test_separable_refuses_full_rank_kernel():
    with pytest.raises(convtool.KernelError, match="not separable"):
        convtool.correlate(np.zeros((5, 5)), "laplacian", method="separable")


def test_uint8_values_taken_as_they_are():
    """No scaling in the API: 200 ⋆ [[2]] is 400, not clipped, in float32."""
    got = convtool.correlate(np.full((2, 2), 200, np.uint8), [[2.0]])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.full((2, 2), 400.0))


def test_threads_limit_gives_same_result():
    x = random_image((40, 30, 3), np.float32, seed=10)
    k = distinct_kernel(5, 5)
    np.testing.assert_array_equal(
        convtool.correlate(x, k, threads=1), convtool.correlate(x, k, threads=2)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"border": "same"}, convtool.UsageError, "unknown border 'same'"),
        ({"threads": 0}, convtool.UsageError, "threads must be between 1"),
        ({"cval": float("nan")}, convtool.UsageError, "cval"),
        ({"method": "fast"}, convtool.UsageError, "unknown method"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        convtool.correlate(np.zeros((4, 4)), "laplacian", **kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((2, 2, 2, 2)), "4 dimensions"),
        (np.zeros(5), "1 dimensions"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_bad_images(image, match):
    with pytest.raises(convtool.ImageError, match=match):
        convtool.correlate(image, "laplacian")


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9),
        elements=st.floats(-100, 100),
    ),
    k=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(-10, 10),
    ),
    mode=st.sampled_from(MODES),
    cval=st.floats(-5, 5),
)
def test_property_matches_reference(x, k, mode, cval):
    """Random shapes, kernels and modes against the plain-loop reference."""
    assert_close(
        convtool.correlate(x, k, border=mode, cval=cval),
        references.correlate(x, k, mode, cval),
        k,
        x,
    )


@settings(max_examples=40, deadline=None)
@given(
    u=hnp.arrays(np.float64, st.integers(1, 7), elements=st.floats(-4, 4)),
    v=hnp.arrays(np.float64, st.integers(1, 7), elements=st.floats(-4, 4)),
    mode=st.sampled_from([*MODES, "valid"]),
    seed=st.integers(0, 100),
)
def test_property_separable_equals_direct(u, v, mode, seed):
    """Any outer product u vᵀ gives the same result through both paths."""
    k = np.outer(u, v)
    x = random_image((12, 10, 2), np.float64, seed=seed)
    direct = convtool.correlate(x, k, border=mode, cval=1.0, method="direct")
    if separable_factors(k) is None:
        return
    sep = convtool.correlate(x, k, border=mode, cval=1.0, method="separable")
    assert_close(sep, direct, np.abs(u).sum() * np.abs(v).sum() * np.ones((1, 1)), x)


@settings(max_examples=40, deadline=None)
@given(
    k=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(-10, 10),
    ),
    mode=st.sampled_from([*MODES, "valid"]),
)
def test_property_convolve_flips(k, mode):
    x = random_image((8, 9), np.float64, seed=1)
    np.testing.assert_array_equal(
        convtool.convolve(x, k, border=mode), convtool.correlate(x, k[::-1, ::-1], border=mode)
    )


# --- output= ----------------------------------------------------------------------------------

# (method, threads): auto alone takes numpy for this small work, with a thread count the core
PATHS = [("auto", None), ("auto", 1), ("direct", None), ("separable", None), ("fft", 2)]


@pytest.mark.parametrize(("method", "threads"), PATHS)
@pytest.mark.parametrize("mode", [*MODES, "valid"])
@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, 3), (np.uint16, 0), (np.float32, 2),
                                                 (np.float64, 3)])  # fmt: skip
@pytest.mark.parametrize("operation", [convtool.correlate, convtool.convolve])
def test_output_gets_the_result_and_is_returned(operation, dtype, channels, mode, method, threads):
    """Every path and border writes into ``output`` exactly the values it returns without it
    (a NaN-filled array: nothing left over), and returns ``output`` itself."""
    x = random_image((11, 9) + ((channels,) if channels else ()), dtype, seed=31)
    k = distinct_kernel(3, 4, seed=32)
    if method == "separable":
        k = np.outer([1.0, 3.0, 9.0], [1.0, -2.0, 4.0, 8.0])  # rank 1, entries distinct
    kwargs = {"border": mode, "cval": 0.75, "method": method, "threads": threads}
    fresh = operation(x, k, **kwargs)
    out = np.full(fresh.shape, np.nan, fresh.dtype)
    got = operation(x, k, output=out, **kwargs)
    assert got is out
    assert got.tobytes() == fresh.tobytes()
    flipped = k if operation is convtool.correlate else k[::-1, ::-1]
    if mode == "valid":
        assert_close(got, references.correlate(x, flipped, "valid"), k, x)
    elif operation is convtool.correlate:
        assert_close(got, references.scipy_correlate(x, k, mode, 0.75), k, x)


def test_output_reused_frame_after_frame():
    """One array serves a loop over frames: each call overwrites the previous result."""
    k = distinct_kernel(3, 3, seed=33)
    out = np.empty((20, 30, 3), np.float32)
    for seed in range(3):
        frame = random_image((20, 30, 3), np.float32, seed=seed)
        convtool.correlate(frame, k, border="mirror", method="direct", output=out)
        np.testing.assert_array_equal(out, convtool.correlate(frame, k, border="mirror",
                                                              method="direct"))  # fmt: skip


def test_output_may_share_a_buffer_with_the_image_without_overlapping():
    """Two halves of one buffer, image and output: accepted, and the result is right."""
    buffer = random_image((2, 16, 12), np.float32, seed=34)
    expected = convtool.correlate(buffer[0].copy(), "laplacian")
    out = buffer[1]
    assert convtool.correlate(buffer[0], "laplacian", output=out) is out
    np.testing.assert_array_equal(out, expected)


def _read_only(shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, np.float32)
    out.flags.writeable = False
    return out


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (
            np.empty((6, 8, 3), np.float32),
            r"shape \(6, 8, 3\) and dtype float32; this call "
            r"returns shape \(6, 8\) and dtype float32 \(or uint8 / uint16, rounded and "
            r"clipped\): pass "
            r"np.empty\(\(6, 8\), np.float32\)",
        ),
        (np.empty((6, 8), np.float64), r"dtype float64; this call returns .* dtype float32"),
        (np.empty((6, 8), np.int32), "dtype int32"),
        (np.empty((6, 8), ">f4"), "dtype >f4"),
        (_read_only((6, 8)), "read-only; pass a writeable array"),
        (np.empty((8, 6), np.float32).T, "not C-contiguous"),
        (np.empty((6, 16), np.float32)[:, ::2], "not C-contiguous"),
        ([[0.0] * 8] * 6, "must be a numpy array or a dtype; got list"),
        (np.int64, "output dtype int64 is not one this call writes"),
    ],
)
def test_output_refused(output, match):
    """A wrong output says what came in and what the call needs."""
    with pytest.raises(convtool.UsageError, match=match):
        convtool.correlate(np.zeros((6, 8), np.uint8), "laplacian", output=output)


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_output_refused_when_it_is_the_image(method):
    """Writing the result over its own input is refused (also a view of it), the image kept."""
    x = random_image((9, 7), np.float32, seed=35)
    before = x.copy()
    with pytest.raises(convtool.UsageError, match="output shares memory with the image"):
        convtool.correlate(x, "laplacian", method=method, output=x)
    padded = np.zeros((11, 9), np.float32)
    padded[1:-1, 1:-1] = x
    with pytest.raises(convtool.UsageError, match="shares memory"):
        convtool.convolve(padded, np.ones((3, 1)), border="valid", output=padded[2:])
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">u2", "<f4"])
def test_byte_order_changes_nothing(dtype):
    """Big-endian data gives the dtype and values of the same data in native order."""
    native = (random_image((9, 11, 3), np.float64, seed=3) * 1000).astype(
        np.dtype(dtype).newbyteorder("=")
    )
    k = distinct_kernel(3, 4)
    expected = convtool.correlate(native, k, border="mirror")
    got = convtool.correlate(native.astype(dtype), k, border="mirror")
    assert got.dtype == expected.dtype == (np.float64 if dtype[1:] == "f8" else np.float32)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_read_only_images_do_not_compile_the_core_again(method):
    """``np.asarray`` of a Pillow image is read-only; numba would type it apart (a second
    compilation of the core, seconds on a cold cache). Same values, no read-only signature."""
    from convtool import compiled

    jit = compiled.core()

    x = random_image((12, 10, 3), np.float32, seed=4)
    k = (
        np.outer([1.0, 2.0, 3.0], [1.0, 5.0, 4.0])
        if method == "separable"
        else distinct_kernel(3, 3)
    )
    frozen = x.copy()
    frozen.flags.writeable = False
    got = convtool.correlate(frozen, k, method=method, threads=1)
    np.testing.assert_array_equal(got, convtool.correlate(x, k, method=method, threads=1))
    assert not frozen.flags.writeable
    np.testing.assert_array_equal(frozen, x)
    for core in (jit.correlate_direct, jit.correlate_separable, jit.correlate_fft):
        for signature in core.signatures:
            assert not any(_read_only_array(t) for t in signature), signature


def _read_only_array(t: object) -> bool:
    """Whether numba type ``t`` is, or holds (a tuple's members), a read-only array."""
    from numba import types

    if isinstance(t, types.Array):
        return not t.mutable
    return any(_read_only_array(u) for u in getattr(t, "types", ()))


def test_read_only_check_sees_read_only_arrays():
    """The check above can fail: numba's read-only array type, alone or in a tuple."""
    from numba import types

    frozen = types.Array(types.float32, 2, "C", readonly=True)
    assert _read_only_array(frozen)
    assert _read_only_array(types.Tuple((types.int64, frozen)))
    assert not _read_only_array(types.Array(types.float32, 2, "C"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"border": "constant", "cval": "a"}, "cval must be a number; got str 'a'"),
        ({"threads": 1.5}, "threads must be a whole number"),
        ({"threads": True}, "threads must be a whole number"),
    ],
)
def test_bad_scalars_are_usage_errors(options, message):
    with pytest.raises(convtool.UsageError, match=message):
        convtool.correlate(np.ones((5, 5)), "box", **options)


def test_complex_images_are_refused_with_what_to_do():
    with pytest.raises(convtool.ImageError, match=r"complex64; expected real numbers.*\.real"):
        convtool.correlate(np.ones((5, 5), np.complex64), "box")
