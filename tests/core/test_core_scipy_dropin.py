"""The Python API as a drop-in for scipy.ndimage.correlate: what scipy code passes it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from convtool import convolve, correlate
from convtool.errors import KernelError, UsageError


@pytest.mark.parametrize("shape", [(0, 5), (4, 0), (0, 0), (0, 3, 3), (3, 3, 0)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_empty_image_gives_an_empty_result_as_scipy(shape, dtype):
    image = np.zeros(shape, dtype)
    kernel = np.ones((3, 2))
    out = correlate(image, kernel)
    assert out.shape == shape
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert ndi.correlate(image, kernel[..., None] if len(shape) == 3 else kernel).shape == shape
    assert convolve(image, kernel, origin=(0, -1)).shape == shape


def test_empty_image_still_checks_its_arguments():
    with pytest.raises(UsageError, match="unknown border"):
        correlate(np.zeros((0, 4)), np.ones((3, 3)), border="edge")


@pytest.mark.parametrize("weights", [np.array([1.0, -1.0]), [1, 2, 1]])
def test_one_dimensional_weights_are_refused_with_the_fix(weights):
    """scipy refuses 1-D weights for a 2-D image; taking them as a row would hide the bug."""
    with pytest.raises(RuntimeError):
        ndi.correlate(np.ones((4, 4)), np.asarray(weights))
    with pytest.raises(KernelError, match=r"k\[None, :\] for a row, k\[:, None\] for a column"):
        correlate(np.ones((4, 4)), weights)


def test_the_suggested_row_and_column_equal_scipy():
    x = np.random.default_rng(0).random((5, 6))
    k = np.array([1.0, -2.0, 4.0])
    np.testing.assert_allclose(correlate(x, k[None, :]), ndi.correlate(x, k[None, :]))
    np.testing.assert_allclose(correlate(x, k[:, None]), ndi.correlate(x, k[:, None]))


@pytest.mark.parametrize(
    ("keyword", "advice"),
    [("mode", "border="), ("weights", "second argument"), ("axes", "first two axes"),
     ("truncate", "border=, cval=")],
)  # fmt: skip
@pytest.mark.parametrize("function", [correlate, convolve])
def test_scipy_keywords_get_one_clear_error(function, keyword, advice):
    with pytest.raises(UsageError, match=rf"takes no keyword {keyword}=; .*{advice}"):
        function(np.ones((3, 3)), np.ones((3, 3)), **{keyword: "reflect"})


def test_complex_kernel_advice_mentions_scipys_conjugate():
    k = np.array([[1 + 2j, 0], [0, 1j]])
    with pytest.raises(KernelError, match="conjugates"):
        correlate(np.ones((3, 3)), k)
    # the advice's formula is scipy's result
    x = np.random.default_rng(1).random((4, 5))
    advised = ndi.correlate(x, k.real) - 1j * ndi.correlate(x, k.imag)
    np.testing.assert_allclose(ndi.correlate(x.astype(complex), k), advised)
