"""The kernel chain of ``convtool apply``: order, biases, scale, normalize, convolve, alpha."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from convtool.errors import UsageError
from convtool.filtering import Recipe, filter_planes
from convtool.kernels import Kernel, load_kernel

from conftest import distinct_kernel

X = np.arange(35, dtype=np.float64).reshape(5, 7) ** 1.5 / 100


def test_chain_applies_kernels_in_order_with_each_files_bias_then_scale_and_bias():
    k1 = Kernel(distinct_kernel(2, 3), "k1", bias=0.25)
    k2 = Kernel(distinct_kernel(3, 1, seed=1), "k2", bias=-1.0)
    recipe = Recipe((k1, k2), border="mirror", scale=0.5, bias=2.0)
    out, alpha = filter_planes(X, None, recipe)
    step1 = ndimage.correlate(X, k1.weights, mode="mirror") + 0.25
    expected = 0.5 * (ndimage.correlate(step1, k2.weights, mode="mirror") - 1.0) + 2.0
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert alpha is None and out.dtype == np.float64


def test_convolve_flips_and_normalize_divides_each_kernel():
    k = distinct_kernel(3, 3)
    out, _ = filter_planes(X, None, Recipe((Kernel(k),), convolve=True, normalize=True))
    expected = ndimage.correlate(X, (k / k.sum())[::-1, ::-1], mode="reflect")
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_normalize_leaves_a_zero_sum_kernel_alone():
    sobel = load_kernel("sobel-x")
    out, _ = filter_planes(X, None, Recipe((sobel,), normalize=True))
    np.testing.assert_allclose(out, ndimage.correlate(X, sobel.weights, mode="reflect"), atol=1e-12)


def test_valid_chain_shrinks_and_crops_a_kept_alpha_to_the_centres():
    colour = np.zeros((6, 8, 1), np.float32)
    alpha = np.arange(48, dtype=np.float32).reshape(6, 8)
    recipe = Recipe((load_kernel("3 3 3; 3 3 3; 3 3 3"), load_kernel("1 1 1 1")), border="valid")
    out, kept = filter_planes(colour, alpha, recipe)
    # 3×3 then 1×4: 6×8 → 4×6 → 4×3; centres at rows 1 + 0, columns 1 + 2
    assert out.shape == (4, 3, 1)
    np.testing.assert_array_equal(kept, alpha[1:5, 3:6])


def test_premultiplied_alpha_does_not_bleed_hidden_colour():
    """Opaque red left, transparent (hidden green) right: a blur stays red, alpha fades."""
    colour = np.zeros((1, 4, 3), np.float32)
    colour[0, :2] = [1, 0, 0]
    colour[0, 2:] = [0, 1, 0]
    alpha = np.array([[1, 1, 0, 0]], np.float32)
    recipe = Recipe((load_kernel("1 1 1"),), border="nearest", normalize=True, alpha="filter")
    out, out_alpha = filter_planes(colour, alpha, recipe)
    np.testing.assert_allclose(out_alpha, [[1, 2 / 3, 1 / 3, 0]], rtol=1e-6)
    np.testing.assert_allclose(out[0, :3], [[1, 0, 0]] * 3, rtol=1e-6)
    np.testing.assert_array_equal(out[0, 3], [0, 0, 0])  # nothing opaque in reach
    # without premultiplying the hidden green bleeds in
    kept, _ = filter_planes(colour, alpha, Recipe(recipe.kernels, "nearest", normalize=True))
    np.testing.assert_allclose(kept[0, 1], [2 / 3, 1 / 3, 0], rtol=1e-6)


def test_premultiplied_partial_alpha_weights_colour_by_alpha():
    colour = np.array([[[1.0], [0.0]]], np.float32)
    alpha = np.array([[0.25, 0.75]], np.float32)
    out, out_alpha = filter_planes(
        colour, alpha, Recipe((load_kernel("0.5 0.5"),), "nearest", alpha="filter")
    )
    # pixel 1: (0.5·0.25·1 + 0.5·0.75·0) / (0.5·0.25 + 0.5·0.75) = 0.25
    np.testing.assert_allclose(out[0, :, 0], [1.0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(out_alpha, [[0.25, 0.5]], rtol=1e-6)


def test_alpha_filter_on_an_opaque_image_gives_keeps_colour_for_any_kernel():
    rng = np.random.default_rng(0)
    colour = rng.random((9, 11, 3)).astype(np.float32)
    opaque = np.ones((9, 11), np.float32)
    kernels = (load_kernel("sobel-x"), Kernel(distinct_kernel(2, 2), bias=0.1))
    keep, _ = filter_planes(colour, opaque, Recipe(kernels, "mirror", scale=2, bias=0.5))
    filt, out_alpha = filter_planes(
        colour, opaque, Recipe(kernels, "mirror", scale=2, bias=0.5, alpha="filter")
    )
    np.testing.assert_allclose(filt, keep, rtol=1e-5, atol=1e-5)
    # alpha is filtered with the kernels alone: no kernel bias, no scale, no bias
    expected_alpha = ndimage.correlate(
        ndimage.correlate(opaque, kernels[0].weights, mode="mirror"),
        kernels[1].weights,
        mode="mirror",
    )
    np.testing.assert_allclose(out_alpha, expected_alpha, atol=1e-5)


def test_constant_border_is_opaque_cval_outside():
    colour = np.full((1, 3, 1), 0.5, np.float32)
    alpha = np.ones((1, 3), np.float32)
    recipe = Recipe((load_kernel("1 1 1"),), "constant", cval=1.0, normalize=True, alpha="filter")
    out, out_alpha = filter_planes(colour, alpha, recipe)
    np.testing.assert_allclose(out[0, :, 0], [2 / 3, 0.5, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(out_alpha, [[1, 1, 1]], rtol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernels": ()}, "no kernel"),
        ({"border": "edge"}, "unknown border"),
        ({"alpha": "premultiply"}, "unknown alpha"),
        ({"scale": float("nan")}, "--scale must be a finite number"),
    ],
)
def test_recipe_refuses_bad_options(options, message):
    settings = {"kernels": (load_kernel("box"),), **options}
    with pytest.raises(UsageError, match=message):
        Recipe(**settings)
