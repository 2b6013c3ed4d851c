"""The border rules' twins tested against each other: the jitted ``map_index``, the numpy
``border_index`` and the small-work numpy path that extends images by it."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from convtool import compiled
from convtool.choices import BORDER_CODES, BORDERS
from convtool.core import paths
from convtool.twins import borders

JIT = compiled.core()
POSITIONS = [*range(-40, 41), -1_000_003, -65_537, 65_536, 999_983, 2**40 + 3, -(2**40) - 5]
"""Negative positions, positions far beyond n, and around the periods of every mode."""


def test_the_jitted_border_codes_are_the_vocabulary():
    """The numba package may not import ``convtool.choices``: its codes are held equal here."""
    jit_borders = importlib.import_module("convtool._jit.borders")
    for name, code in BORDER_CODES.items():
        assert getattr(jit_borders, name.upper()) == code
        assert getattr(borders, name.upper()) == code


@pytest.mark.parametrize("border", list(BORDER_CODES))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16])
def test_jitted_and_numpy_border_mapping_agree(border, n):
    """Every mode, every position: the index read (−1: cval) is the same in both."""
    mode = BORDER_CODES[border]
    expected = [JIT.map_index(x, n, mode) for x in POSITIONS]
    got = borders.border_index(np.array(POSITIONS), n, mode)
    np.testing.assert_array_equal(got, expected)
    assert all(-1 <= e < n for e in expected)
    assert (min(expected) == -1) == (border == "constant")


NUMPY_PAD = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}
"""numpy.pad's names for scipy's modes: the reference the small-work path once padded with."""


def padded_reference(x, weights, border, cval, dtype, integer):
    """The small-work path as it was written with ``np.pad``."""
    kh, kw = weights.shape
    xf = x.astype(dtype, copy=False)
    if border == "valid":
        padded = xf
    else:
        pads = [(kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2)] + [(0, 0)] * (x.ndim - 2)
        if border == "constant":
            padded = np.pad(xf, pads, mode="constant", constant_values=dtype(cval))
        else:
            padded = np.pad(xf, pads, mode=NUMPY_PAD[border])
    ho = padded.shape[0] - kh + 1
    wo = padded.shape[1] - kw + 1
    acc = np.zeros((ho, wo, *x.shape[2:]), dtype)
    for a, b in zip(*np.nonzero(weights), strict=True):
        acc += padded[a : a + ho, b : b + wo] * dtype(weights[a, b])
    if integer is None:
        return acc
    acc += dtype(integer.bias)
    if integer.absolute:
        acc = np.abs(acc)
    return np.rint(np.clip(acc, 0, dtype(integer.top))).astype(np.uint8)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1, 3), (4, 9, 2), (11, 8)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("integer", [None, paths.IntegerOutput(2.5, True, 255.0)])
def test_the_numpy_path_extends_images_as_np_pad_did(border, shape, dtype, integer):
    """The small-work path gathers the extended image by ``twins.borders``: the bytes np.pad's
    renamed modes gave, kernels larger than the image included."""
    weights = np.arange(1.0, 16.0).reshape(3, 5) * np.where(np.arange(15) % 2, -1, 1).reshape(3, 5)
    if border == "valid" and (shape[0] < 3 or shape[1] < 5):
        weights = weights[: shape[0], : shape[1]]
    x = np.random.default_rng(sum(shape)).integers(0, 256, shape).astype(dtype)
    work = np.float64 if dtype == np.float64 and integer is None else np.float32
    expected = padded_reference(x, weights, border, 3.25, work, integer)
    out = np.empty(expected.shape, expected.dtype)
    paths.numpy_direct(paths.Task(x, weights, border, 3.25, work, out, integer))
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
