"""The layer pass's numpy twin gives the jitted result bit for bit (the bytes of a first run)."""

from __future__ import annotations

import importlib
from unittest import mock

import numpy as np
import pytest

from convtool import compiled
from convtool.choices import BORDERS
from convtool.kernels.layer import Layer

L = importlib.import_module("convtool.core.layer")


def _layer(seed: int, kshape: tuple[int, int]) -> Layer:
    """3 -> 4 pairs: distinct direct kernels, rank-1 ones, a zero pair, an output with none."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3, *kshape)) / 5
    w[0, 1] = np.outer(rng.standard_normal(kshape[0]), rng.standard_normal(kshape[1]))
    w[2, 2] = np.outer(np.arange(1, kshape[0] + 1), np.arange(kshape[1], 0, -1)) / 9
    w[1, 0] = 0
    w[3] = 0
    return Layer(w, [0.5, -1, 0.25, 2])


def _run(x: np.ndarray, layer: Layer, border: str, use_twin: bool) -> np.ndarray:
    def chosen(name, args, function, *, now):
        (function if use_twin else getattr(compiled.core(), name))(*args)

    with mock.patch.object(L.compiled, "run", chosen):
        return L.correlate_layer(x, layer, border=border, cval=0.375, method="auto", threads=2)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.uint16])
@pytest.mark.parametrize("kshape", [(5, 5), (9, 7), (2, 3)])
def test_twin_is_the_jitted_layer_bit_for_bit(border, dtype, kshape):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "u":
        x = rng.integers(0, np.iinfo(dtype).max, (23, 19, 3), endpoint=True).astype(dtype)
    else:
        x = rng.standard_normal((23, 19, 3)).astype(dtype)
    layer = _layer(2, kshape)
    jitted = _run(x, layer, border, use_twin=False)
    twinned = _run(x, layer, border, use_twin=True)
    assert jitted.dtype == twinned.dtype
    np.testing.assert_array_equal(jitted.view(np.uint8), twinned.view(np.uint8))
