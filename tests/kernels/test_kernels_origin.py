"""The kernel's origin: scipy.ndimage's ``origin=`` for correlate and convolve, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from convtool import convolve, correlate
from convtool.errors import ConvtoolError, KernelError, UsageError
from convtool.kernels.origin import at_origin, check_origin, parse_origin

from conftest import distinct_kernel

BORDERS = ["reflect", "mirror", "nearest", "wrap", "constant"]


def test_correlate17_ported_from_scipy():
    """scipy's test_correlate17 (1-D there, one row here): origin −1 with an even kernel."""
    array = np.array([[1.0, 2.0, 3.0]])
    kernel = np.array([[1.0, 1.0]])
    np.testing.assert_array_almost_equal(correlate(array, kernel, origin=(0, -1)), [[3, 5, 6]])
    np.testing.assert_array_almost_equal(convolve(array, kernel, origin=(0, -1)), [[2, 3, 5]])


def test_bad_convolve_and_correlate_origins_ported_from_scipy():
    """scipy's regression test for gh-822: an origin outside the kernel is refused."""
    with pytest.raises(ConvtoolError):
        correlate(np.arange(6.0)[None, :], np.array([[1.0, 1.0, 2.0, 0.0]]), origin=(0, 2))
    with pytest.raises(ConvtoolError):
        correlate(np.arange(6.0)[None, :], np.array([[0.0, 1.0, 2.0]]), origin=(0, 2))
    with pytest.raises(ConvtoolError):
        correlate(np.ones((3, 5)), np.ones((2, 2)), origin=[0, 1])
    with pytest.raises(ConvtoolError):
        convolve(np.arange(10.0)[None, :], np.ones((1, 3)), origin=(0, -2))
    with pytest.raises(ConvtoolError):
        convolve(np.ones((3, 5)), np.ones((2, 2)), origin=[0, -2])


@pytest.mark.parametrize("kshape", [(1, 1), (2, 2), (3, 2), (4, 5), (5, 3)])
@pytest.mark.parametrize("border", BORDERS)
def test_every_origin_equals_scipy(kshape, border):
    """Every valid origin of odd, even and non-square kernels, whole arrays, every border."""
    x = np.random.default_rng(1).standard_normal((7, 9))
    k = distinct_kernel(*kshape)
    kh, kw = kshape
    for dy in range(-(kh // 2), (kh - 1) // 2 + 1):
        for dx in range(-(kw // 2), (kw - 1) // 2 + 1):
            for ours, theirs in ((correlate, ndi.correlate), (convolve, ndi.convolve)):
                got = ours(x, k, border=border, cval=0.5, origin=(dy, dx))
                want = theirs(x, k, mode=border, cval=0.5, origin=(dy, dx))
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(k).sum() * 9)


def test_one_integer_moves_both_axes_and_bands_of_rgb():
    x = np.random.default_rng(2).random((6, 8, 3)).astype(np.float32)
    k = distinct_kernel(3, 3)
    want = np.stack([ndi.correlate(x[..., c], k, origin=-1) for c in range(3)], axis=2)
    np.testing.assert_allclose(correlate(x, k, origin=-1), want, rtol=0, atol=1e-5 * 500)


def test_convolve_without_origin_keeps_convtools_anchor():
    """No origin: an even side is anchored as scipy's origin −1 (OpenCV's flip of K)."""
    x = np.random.default_rng(3).random((5, 6))
    k = distinct_kernel(2, 4)
    np.testing.assert_allclose(convolve(x, k), ndi.convolve(x, k, origin=(-1, -1)), atol=1e-12)


def test_origin_with_valid_is_refused_and_zero_is_accepted():
    x = np.random.default_rng(4).random((5, 6))
    with pytest.raises(UsageError, match="crop the result"):
        correlate(x, np.ones((3, 3)), border="valid", origin=(1, 0))
    plain = correlate(x, np.ones((3, 3)), border="valid")
    np.testing.assert_array_equal(correlate(x, np.ones((3, 3)), border="valid", origin=0), plain)


def test_at_origin_pads_to_an_odd_kernel_centred_on_the_cell():
    k = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(at_origin(k, (0, 1)), [[1, 2, 3, 4, 0, 0, 0]])
    assert at_origin(k, (0, -2)).tolist() == [[0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]]
    with pytest.raises(KernelError, match="from -2 to 1"):
        at_origin(k, (0, 2))


@pytest.mark.parametrize("bad", [1.5, (1,), (1, 2, 3), "1,2", (True, 0), None])
def test_check_origin_refuses_what_is_not_integers(bad):
    with pytest.raises(UsageError, match="origin must be"):
        check_origin(bad)


def test_parse_origin():
    assert parse_origin("-1,0") == (-1, 0)
    assert parse_origin(" 2 ") == (2, 2)
    with pytest.raises(UsageError, match="DY,DX"):
        parse_origin("1,x")
