"""learn's alignment follows the kernel's origin: scipy's outputs with origin= learn back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.ndimage as ndi

from convtool import learn_kernel
from convtool.errors import KernelError

K = np.arange(1.0, 13.0).reshape(3, 4) * np.array([1.0, -1.0, 1.0, 1.0])


@pytest.mark.parametrize("origin", [(0, 0), (1, -2), (-1, 1), (0, 1)])
def test_round_trip_with_origin(origin):
    x = np.random.default_rng(0).random((30, 40))
    fitted = learn_kernel(x, ndi.correlate(x, K, origin=origin), "3x4", origin=origin)
    np.testing.assert_allclose(fitted.weights, K, atol=1e-9)
    fitted = learn_kernel(x, ndi.convolve(x, K, origin=origin), "3x4", origin=origin, convolve=True)
    np.testing.assert_allclose(fitted.weights, K, atol=1e-9)


def test_origin_outside_the_kernel_is_refused():
    x = np.random.default_rng(1).random((10, 10))
    with pytest.raises(KernelError, match="origin dx=2 is outside"):
        learn_kernel(x, x, "3x4", origin=(0, 2))


def test_learn_origin_option(tmp_path):
    x = np.random.default_rng(2).random((20, 25))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", ndi.correlate(x, K, origin=(-1, 1)))
    done = subprocess.run(
        [sys.executable, "-m", "convtool", "learn", tmp_path / "x.npy", tmp_path / "y.npy",
         "--size", "3x4", "--origin", "-1,1", "-o", tmp_path / "k.txt"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.loadtxt(tmp_path / "k.txt"), K, atol=1e-6)


@pytest.mark.parametrize("convolve", [False, True])
@pytest.mark.parametrize("origin", [(1, -2), (-1, 1)])
def test_layer_modes_follow_the_origin(origin, convolve):
    """--channels per and mix align the target at the origin too: a scipy layer with origin=
    (out[o] = Σ_i corr(x[i], K[o, i], origin) + b[o]) learns back."""
    rng = np.random.default_rng(3)
    x = rng.random((24, 30, 3))
    layer = rng.normal(size=(2, 3, 3, 4))
    biases = np.array([0.25, -0.5])
    op = ndi.convolve if convolve else ndi.correlate
    y = np.stack(
        [sum(op(x[..., i], layer[o, i], origin=origin) for i in range(3)) + biases[o]
         for o in range(2)],
        axis=-1,
    )  # fmt: skip
    mixed = learn_kernel(x, y, "3x4", channels="mix", bias=True, origin=origin, convolve=convolve)
    np.testing.assert_allclose(mixed.kernel.weights, layer, atol=1e-9)
    np.testing.assert_allclose(mixed.kernel.biases, biases, atol=1e-9)
    per = np.stack([op(x[..., c], layer[0, c], origin=origin) for c in range(3)], axis=-1)
    fitted = learn_kernel(x, per, "3x4", channels="per", origin=origin, convolve=convolve)
    np.testing.assert_allclose(fitted.kernel.weights, layer[0], atol=1e-9)
