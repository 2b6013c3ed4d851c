"""The kernel chain of ``convtool apply``: order, biases, scale, normalize, convolve, alpha."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from convtool.errors import UsageError
from convtool.filtering.chain import Recipe, filter_planes
from convtool.filtering.fused import filter_picture, fused_kernel
from convtool.io.picture import Picture
from convtool.io.pixels import stored_samples, to_unit
from convtool.io.plan import plan_output
from convtool.kernels.builtins import SOBEL_X
from convtool.kernels.spec import load_kernel
from convtool.kernels.value import Kernel

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
    kernels = (load_kernel("3 3 3; 3 3 3; 3 3 3"), load_kernel("1 1 1 1"))
    out, kept = filter_planes(colour, alpha, Recipe(kernels, border="valid", alpha="keep"))
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
    kept, _ = filter_planes(
        colour, alpha, Recipe(recipe.kernels, "nearest", normalize=True, alpha="keep")
    )
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
    keep, _ = filter_planes(
        colour, opaque, Recipe(kernels, "mirror", scale=2, bias=0.5, alpha="keep")
    )
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


# Fused integer output: the samples the float chain writes, in one pass ----------------------

SHAPE = (13, 17)


@pytest.fixture(params=["numba", "numpy"])
def core(request, monkeypatch):
    """Each test on both of the core's direct paths: numba's loops and numpy's shifted views
    (taken for calls of at most ``dispatch.NUMPY_WORK`` multiply-adds)."""
    module = sys.modules["convtool.core.dispatch"]
    if request.param == "numba":
        monkeypatch.setattr(module, "NUMPY_WORK", 0.0)
    else:
        monkeypatch.setattr(module, "NUMPY_WORK", float("inf"))
    return request.param


def _stored_picture(colors: str, depth: int, alpha: bool, seed: int = 0) -> Picture:
    """Random samples of every level's extremes included, as ``read_picture(samples=True)``."""
    rng = np.random.default_rng(seed)
    top = (1 << depth) - 1
    dtype = np.uint8 if depth == 8 else np.uint16
    channels = {"L": 1, "RGB": 3}[colors]
    data = rng.integers(0, top + 1, (*SHAPE, channels)).astype(dtype)
    data[0, :3] = 0
    data[1, :3] = top
    a = rng.integers(0, top + 1, SHAPE).astype(dtype) if alpha else None
    return Picture(data=data, alpha=a, integer_stored=True, depth=depth, colors=colors)


def _unfused(picture: Picture, recipe: Recipe, plan) -> np.ndarray:
    """The samples of the float path: to [0, 1] floats, the chain, map, round, clamp."""
    unit = to_unit(picture)
    data, alpha = filter_planes(unit.data, unit.alpha, recipe)
    return stored_samples(unit.with_planes(data, alpha), plan)


def _fused(picture: Picture, recipe: Recipe, plan) -> np.ndarray:
    assert fused_kernel(picture, recipe, plan) is not None
    out = filter_picture(picture, recipe, plan)
    assert out.data.dtype.kind == "u"
    return stored_samples(out, plan)


ASYMMETRIC = Kernel(np.array([[1.0, -2, 3], [-4, 5, -6], [7, -8, 9]]), "asymmetric")
WIDE = Kernel(np.array([[2.0, -1, 0, 3, -4]]), "wide")
EVEN = Kernel(np.array([[1.0, -3], [2, 4]]), "even")
FIVE = Kernel(np.arange(25.0).reshape(5, 5) % 7 - 3, "five")  # rank > 1: direct


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant", "valid"])
@pytest.mark.parametrize("map", ["clip", "abs"])
@pytest.mark.parametrize(
    ("colors", "alpha"), [("L", False), ("RGB", False), ("RGB", True), ("L", True)]
)
@pytest.mark.parametrize("kernel", [ASYMMETRIC, WIDE, EVEN, FIVE, Kernel(SOBEL_X.T, "sobel-y")])
def test_fused_8bit_equals_the_float_path(border, map, colors, alpha, kernel, core):
    picture = _stored_picture(colors, 8, alpha)
    recipe = Recipe((kernel,), border=border, cval=1.0, alpha="keep")
    plan = plan_output(picture, "PNG", map=map)
    np.testing.assert_array_equal(_fused(picture, recipe, plan), _unfused(picture, recipe, plan))


@pytest.mark.parametrize(
    ("scale", "bias", "kernel_bias", "cval"),
    [(2.0, 0.0, 0.0, 0.0), (-1.0, 1.0, 0.0, 0.0), (1.0, 0.2, -0.4, 0.6), (3.0, -0.2, 0.0, 2.0)],
)
@pytest.mark.parametrize("convolve", [False, True])
def test_fused_scale_bias_kernel_bias_and_cval(scale, bias, kernel_bias, cval, convolve, core):
    picture = _stored_picture("RGB", 8, True, seed=1)
    kernel = Kernel(ASYMMETRIC.weights, "k", bias=kernel_bias)
    recipe = Recipe((kernel,), border="constant", cval=cval, scale=scale, bias=bias,
                    convolve=convolve, alpha="keep")  # fmt: skip
    for map in ("clip", "abs"):
        plan = plan_output(picture, "PNG", map=map)
        np.testing.assert_array_equal(
            _fused(picture, recipe, plan), _unfused(picture, recipe, plan)
        )


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant", "valid"])
@pytest.mark.parametrize("kernel", ["sobel-x", "laplacian", "sharpen", "edge", "roberts-y"])
@pytest.mark.parametrize(("colors", "alpha"), [("L", False), ("RGB", True)])
def test_fused_16bit_equals_the_float_path(border, kernel, colors, alpha, core):
    picture = _stored_picture(colors, 16, alpha, seed=2)
    recipe = Recipe((load_kernel(kernel),), border=border, cval=1.0, alpha="keep")
    for map in ("clip", "abs"):
        plan = plan_output(picture, "TIFF", map=map)
        np.testing.assert_array_equal(
            _fused(picture, recipe, plan), _unfused(picture, recipe, plan)
        )


def test_fused_8bit_into_16bit_and_without_alpha():
    """8-bit samples written 16-bit (K' = 257·K), and alpha dropped by the format."""
    picture = _stored_picture("RGB", 8, True, seed=3)
    recipe = Recipe((Kernel(SOBEL_X),), border="mirror", alpha="keep")
    for plan in (plan_output(picture, "TIFF", depth=16), plan_output(picture, "JPEG")):
        np.testing.assert_array_equal(
            _fused(picture, recipe, plan), _unfused(picture, recipe, plan)
        )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"kernels": (load_kernel("box:3"),)}, "weights 1/9 are not integers"),
        ({"kernels": (load_kernel("sobel-x"), load_kernel("edge"))}, "a chain"),
        ({"scale": 0.5}, "0.5 · sobel is not integral"),
        ({"bias": 0.5}, "0.5 · 255 is not an integer"),
        ({"border": "constant", "cval": 0.3}, "0.3 · 255 is not an integer"),
        ({"alpha": "filter"}, "premultiplied alpha"),
        ({"kernels": (Kernel(np.outer([1.0, 2, 3, 2, 1], [1.0, 0, -1, 0, 1])),)}, "separable"),
        ({"kernels": (Kernel(np.full((3, 3), 2.0**20)),)}, "sums beyond 2**24"),
    ],
)
def test_not_fused_where_it_could_differ(change, why):
    """Outside the cases that cannot round differently, the float path runs (same result)."""
    picture = _stored_picture("RGB", 8, True, seed=4)
    recipe = Recipe(**{"kernels": (load_kernel("sobel-x"),), **change})
    plan = plan_output(picture, "PNG")
    assert fused_kernel(picture, recipe, plan) is None, why
    out = filter_picture(picture, recipe, plan)
    assert out.data.dtype == np.float32
    np.testing.assert_array_equal(stored_samples(out, plan), _unfused(picture, recipe, plan))


def test_not_fused_for_other_maps_depths_and_sixteen_bit_large_kernels():
    picture = _stored_picture("L", 16, False)
    recipe = Recipe((load_kernel("sobel-x"),))
    assert fused_kernel(picture, recipe, plan_output(picture, "PNG", map="rescale")) is None
    assert fused_kernel(picture, recipe, plan_output(picture, "PNG", depth=8)) is None
    assert fused_kernel(picture, recipe, plan_output(picture, "TIFF", depth=32)) is None
    assert fused_kernel(picture, Recipe((ASYMMETRIC,)), plan_output(picture, "PNG")) is None
    assert fused_kernel(to_unit(picture), recipe, plan_output(picture, "PNG")) is None


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    weights=st.lists(st.integers(-4, 4), min_size=9, max_size=9),
    depth=st.sampled_from([8, 16]),
    border=st.sampled_from(["reflect", "mirror", "nearest", "wrap", "constant", "valid"]),
    scale=st.sampled_from([1.0, -1.0, 2.0]),
    bias=st.sampled_from([0.0, 0.2, -0.6, 1.0]),
    map=st.sampled_from(["clip", "abs"]),
    seed=st.integers(0, 1000),
)
def test_fused_equals_the_float_path_whenever_chosen(
    core, weights, depth, border, scale, bias, map, seed
):
    """Whatever integer kernel, depth, border and factors: fused means the same samples."""
    kernel = Kernel(np.array(weights, np.float64).reshape(3, 3))
    picture = _stored_picture("RGB", depth, False, seed)
    recipe = Recipe((kernel,), border=border, cval=1.0, scale=scale, bias=bias)
    plan = plan_output(picture, "TIFF", map=map)
    out = filter_picture(picture, recipe, plan)
    np.testing.assert_array_equal(stored_samples(out, plan), _unfused(picture, recipe, plan))


def test_samples_as_they_are_equal_their_values_written():
    """Every 16-bit and 8-bit level survives to [0, 1] floats, map and quantize unchanged."""
    for depth, dtype in ((16, np.uint16), (8, np.uint8)):
        levels = np.arange(1 << depth, dtype=dtype).reshape(-1, 256, 1)
        picture = Picture(data=levels, integer_stored=True, depth=depth, colors="L")
        for map in ("clip", "abs"):
            plan = plan_output(picture, "TIFF", map=map)
            np.testing.assert_array_equal(stored_samples(picture, plan), levels)
            np.testing.assert_array_equal(stored_samples(to_unit(picture), plan), levels)
