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
