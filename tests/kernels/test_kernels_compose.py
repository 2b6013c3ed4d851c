"""The receptive field of a chain: one kernel equal to applying several in order."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

import convtool
from convtool.kernels.compose import compose_kernels, describe_composition
from convtool.kernels.layer import Layer
from convtool.kernels.spec import load_any_kernel
from convtool.kernels.value import Kernel

from conftest import distinct_kernel
from references import conv2d_layer, correlate

CONVTOOL = [sys.executable, "-m", "convtool"]


def test_two_kernels_compose_to_their_full_convolution():
    a, b = distinct_kernel(3, 2, seed=1), distinct_kernel(2, 4, seed=2)
    c = compose_kernels([Kernel(a, "a", 0.5), Kernel(b, "b", -1)])
    # both widths even: the chain anchors one column further right, so a zero column is added
    full = signal.convolve2d(a, b, mode="full")
    np.testing.assert_array_equal(c.weights, np.pad(full, ((0, 0), (0, 1))))
    assert c.bias == 0.5 * b.sum() - 1
    assert c.name == "a then b"


@pytest.mark.parametrize(
    "shapes",
    [
        [(3, 3), (5, 5)],
        [(2, 2), (2, 3)],
        [(2, 4), (3, 2), (4, 4)],
        [(1, 2), (2, 1), (2, 2), (3, 3)],
    ],
)
def test_the_composed_kernel_equals_the_chain_away_from_the_borders(shapes):
    """Odd and even sizes: even ones are padded so that the anchors agree."""
    x = np.random.default_rng(0).standard_normal((30, 31))
    kernels = [Kernel(distinct_kernel(*s, seed=n), bias=n / 4) for n, s in enumerate(shapes)]
    c = compose_kernels(kernels)
    chained = x
    for k in kernels:
        chained = correlate(chained, k.weights, "reflect") + k.bias
    once = correlate(x, c.weights, "reflect") + c.bias
    m = sum(max(s) for s in shapes)
    np.testing.assert_allclose(once[m:-m, m:-m], chained[m:-m, m:-m], atol=1e-9)
    h = sum(s[0] for s in shapes) - len(shapes) + 1
    w = sum(s[1] for s in shapes) - len(shapes) + 1
    evens = [sum(s[axis] % 2 == 0 for s in shapes) for axis in (0, 1)]
    assert c.shape == (h + max(0, evens[0] - 1), w + max(0, evens[1] - 1))


def test_layers_and_kernels_compose_into_a_layer():
    rng = np.random.default_rng(3)
    a = Layer(rng.standard_normal((2, 3, 3, 2)), [1, 2])
    b = Kernel(distinct_kernel(2, 2), bias=0.5)
    c = Layer(rng.standard_normal((3, 2, 3, 3)), [0.1, 0.2, 0.3])
    composed = compose_kernels([a, b, c])
    assert isinstance(composed, Layer) and composed.weights.shape == (3, 3, 6, 6)
    x = rng.standard_normal((25, 26, 3))
    y = conv2d_layer(x, a.weights, a.biases)
    y = conv2d_layer(y, np.einsum("ab,oi->oiab", b.weights, np.eye(2)), [0.5, 0.5])
    y = conv2d_layer(y, c.weights, c.biases)
    once = conv2d_layer(x, composed.weights, composed.biases)
    np.testing.assert_allclose(once[8:-8, 8:-8], y[8:-8, 8:-8], atol=1e-9)


def test_layers_that_do_not_chain_are_refused():
    with pytest.raises(convtool.KernelError, match="taking 3 channels, but the kernels before"):
        compose_kernels([Layer(np.ones((2, 3, 1, 1))), Layer(np.ones((1, 3, 1, 1)))])


def test_the_note_says_the_size():
    kernels = [load_any_kernel("box:3"), load_any_kernel("1 -1; 2 0")]
    assert describe_composition(kernels).startswith(
        "2 kernels compose to one 4x4 kernel (3+2-1 rows, 3+2-1 columns): the receptive field"
    )


def test_cli_kernels_a_b_then_apply_equals_apply_a_b(tmp_path):
    """`apply -k A -k B` equals `apply -k @composed.txt` away from the borders."""
    x = np.random.default_rng(4).standard_normal((24, 27))
    np.save(tmp_path / "x.npy", x)
    a, b = "1 2 -3; 4 -5 6; -7 8 9", "gaussian:sigma=1,size=5"
    made = subprocess.run(
        [*CONVTOOL, "kernels", a, b, "-o", tmp_path / "c.txt"], capture_output=True, text=True
    )
    assert made.returncode == 0 and made.stdout == ""
    assert made.stderr == (
        "convtool: note: 2 kernels compose to one 7x7 kernel (3+5-1 rows, 3+5-1 columns): the "
        "receptive field of the chain\n"
    )
    for ks, out in (([a, b], "chain.npy"), ([f"@{tmp_path / 'c.txt'}"], "once.npy")):
        args = [arg for k in ks for arg in ("-k", k)]
        run = subprocess.run([*CONVTOOL, "apply", tmp_path / "x.npy", *args, "-o", tmp_path / out])
        assert run.returncode == 0
    chain, once = np.load(tmp_path / "chain.npy"), np.load(tmp_path / "once.npy")
    np.testing.assert_allclose(once[6:-6, 6:-6], chain[6:-6, 6:-6], atol=1e-12)
    printed = subprocess.run([*CONVTOOL, "kernels", a, b], capture_output=True, text=True)
    assert printed.stdout == (tmp_path / "c.txt").read_text()
