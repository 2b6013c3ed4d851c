"""``--channels per`` and ``--channels mix``: per-channel kernels and full layers learned back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi

from convtool.errors import LearnError, UsageError
from convtool.kernels.layer import Layer
from convtool.learn.fit import learn_kernel


def einsum_layer(x: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """The plain layer, valid windows: out[i, j, o] = Σ_(c, a, b) x[i + a, j + b, c]·K[o, c, a, b]
    + b[o], by einsum over the windows."""
    kh, kw = weights.shape[-2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))
    return np.einsum("ijcab,ocab->ijo", windows, weights) + biases


def test_per_channel_recovers_scipy_kernels_and_biases():
    """A lens that blurs each channel with its own asymmetric kernel (scipy.ndimage)."""
    rng = np.random.default_rng(0)
    x = rng.random((50, 43, 3))
    kernels = [rng.random((3, 4)) + np.arange(12).reshape(3, 4) * (c + 1) for c in range(3)]
    biases = np.array([0.1, -0.2, 0.3])
    y = np.stack([ndi.correlate(x[..., c], kernels[c], mode="reflect") for c in range(3)], -1)
    result = learn_kernel(x, y + biases, (3, 4), channels="per", bias=True)
    assert isinstance(result.kernel, Layer) and result.kernel.per_channel
    np.testing.assert_allclose(result.kernel.weights, np.array(kernels), rtol=1e-6)
    np.testing.assert_allclose(result.biases, biases, atol=1e-6)
    assert result.channels == "per" and result.rank == 3 * 13


def colour_mix(x: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """cv2.transform with a 3×3 colour matrix, then a cv2.filter2D blur; and the 3→3 layer
    they make, K[o, i] = M[o, i]·blur."""
    rng = np.random.default_rng(seed)
    m = rng.random((3, 3)) + np.eye(3)
    blur = rng.random((5, 5)) + np.arange(25).reshape(5, 5) / 25
    blur /= blur.sum()
    y = cv2.filter2D(cv2.transform(x, m), -1, blur, borderType=cv2.BORDER_REFLECT_101)
    return y, np.einsum("oi,ab->oiab", m, blur)


def test_mix_recovers_an_opencv_colour_mixing_layer():
    rng = np.random.default_rng(2)
    x = rng.random((48, 52, 3))
    y, layer = colour_mix(x)
    result = learn_kernel(x, y, 5, channels="mix")
    assert isinstance(result.kernel, Layer) and not result.kernel.per_channel
    np.testing.assert_allclose(result.kernel.weights, layer, rtol=1e-6, atol=1e-9)
    assert result.rank == result.unknowns == 75 * 3
    assert result.r2 == pytest.approx(1.0)


def test_mix_matches_the_einsum_layer_3_to_1_with_bias():
    """C_out from the target: a 3→1 layer with a bias, valid-size target made by einsum."""
    rng = np.random.default_rng(3)
    x = rng.random((30, 35, 3))
    weights = rng.standard_normal((1, 3, 3, 2))
    y = einsum_layer(x, weights, np.array([0.7]))
    result = learn_kernel(x, y, (3, 2), channels="mix", bias=True)
    np.testing.assert_allclose(result.kernel.weights, weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.biases, [0.7], atol=1e-9)
    assert result.rmse < 1e-9


def test_mix_on_8_bit_images_within_the_quantisation():
    """8-bit input and target: the layer applied again lands within a grey level or so."""
    rng = np.random.default_rng(4)
    x8 = (rng.random((80, 90, 3)) * 255).astype(np.uint8)
    x = x8.astype(np.float64)
    y, _ = colour_mix(x / 255 * 0.5)
    y8 = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)
    result = learn_kernel(x8, y8, 5, channels="mix")
    again = einsum_layer(x8 / 255, result.kernel.weights, result.biases)[2:-2, 2:-2]
    assert result.max_error is not None and result.max_error < 1.5 / 255
    np.testing.assert_allclose(again * 255, y[4:-4, 4:-4] * 255, atol=1.5)


def test_mix_leaves_out_clipped_samples_per_output_channel():
    """Only the output channel whose target clipped loses those samples."""
    rng = np.random.default_rng(5)
    x = rng.random((40, 40, 3))
    weights = rng.random((2, 3, 3, 3)) / 27  # outputs in (0, 1)
    y = einsum_layer(x, weights, np.array([0.0, 0.0]))
    y[..., 0] = np.clip(y[..., 0] * 8 - 1.6, 0, 1)  # output 0 clipped at both ends
    y[..., 1] = np.clip(y[..., 1], 0, 1)
    weights[0] *= 8
    result = learn_kernel(x, y, 3, channels="mix", bias=True, clip_limits=[(0.0, 1.0)])
    clipped = int(((y[..., 0] <= 0) | (y[..., 0] >= 1)).sum())
    assert result.pixels_clipped == clipped > 0
    np.testing.assert_allclose(result.kernel.weights, weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.biases, [-1.6, 0.0], atol=1e-9)


@pytest.mark.parametrize("channels", ["per", "mix"])
def test_gradient_descent_for_every_mode(channels):
    """The textbook's descent reaches the least-squares layer when run long enough."""
    rng = np.random.default_rng(6)
    x = rng.random((30, 30, 3))
    y, _ = colour_mix(x, seed=7) if channels == "mix" else (x * [0.5, 1.0, 2.0], None)
    exact = learn_kernel(x, y, 2, channels=channels)
    descent = learn_kernel(x, y, 2, channels=channels, method="gd", epochs=20000, seed=0)
    assert descent.method == "gd" and descent.epochs is not None
    np.testing.assert_allclose(descent.kernel.weights, exact.kernel.weights, atol=1e-3)


def test_modes_refuse_what_does_not_fit():
    x = np.random.default_rng(8).random((20, 20, 3))
    with pytest.raises(UsageError, match="unknown --channels 'all'"):
        learn_kernel(x, x, 3, channels="all")
    with pytest.raises(LearnError, match=r"--channels per .* same number of channels"):
        learn_kernel(x, x[..., :2], 3, channels="per")
    with pytest.raises(LearnError, match=r"--channels mix .* every target too"):
        learn_kernel([x, x], [x, x[..., :1]], 3, channels="mix")


@pytest.mark.parametrize("channels", ["per", "mix"])
def test_every_mode_aligns_and_refuses_targets_alike(channels):
    """One alignment for every mode: a 'full' target gets the crop that makes it valid, and a
    kernel larger than the input is refused naming the largest --size."""
    x = np.random.default_rng(9).random((8, 10, 3))
    full = np.zeros((9, 12, 3))  # (8 + 2 - 1) x (10 + 3 - 1): a full output of a 2x3 kernel
    with pytest.raises(LearnError, match=r"'full' output .*\(target\[1:8, 2:10\]\)"):
        learn_kernel(x, full, "2x3", channels=channels)
    with pytest.raises(LearnError, match="choose a --size of at most 8x10"):
        learn_kernel(x, x, "9x3", channels=channels)
