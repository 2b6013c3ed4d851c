"""The numpy twins give the jitted paths' results bit for bit (the bytes of a first run)."""

from __future__ import annotations

import importlib
import itertools

import numba
import numpy as np
import pytest

from convtool import compiled
from convtool.choices import BORDERS
from convtool.twins import borders, direct, fft, png, separable

from conftest import distinct_kernel

C = importlib.import_module("convtool.core.correlate")
D = importlib.import_module("convtool.core.dispatch")
JIT = compiled.core()
OUTPUTS = {
    "correlate_direct": (6, (0, 1)),
    "correlate_separable": (5, (0, 1)),
    "fft_kernel_spectrum": (2, (0, 1)),
    "correlate_fft": (7, (0, 1)),
}
"""Where each jitted function's outputs are: the argument (a bundle) and its fields."""
TWINS = {
    "correlate_direct": direct.correlate_direct,
    "correlate_separable": separable.correlate_separable,
    "fft_kernel_spectrum": fft.fft_kernel_spectrum,
    "correlate_fft": fft.correlate_fft,
}

KERNELS = {
    "edge 1x2": np.array([[1.0, -1.0]]),
    "sobel 3x3": np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "distinct 3x3": distinct_kernel(3, 3, seed=1),
    "distinct 5x5": distinct_kernel(5, 5, seed=2) / 50,
    "distinct 2x4": distinct_kernel(2, 4, seed=3),
    "distinct 4x1": distinct_kernel(4, 1, seed=4),
    "distinct 7x5": distinct_kernel(7, 5, seed=5) / 40,
    "rank-1 5x7": np.outer([1, -2, 3, 0.5, 4], [0.25, 1, -1, 2, 3, -0.5, 1]) / 7,
    "box 5x5": np.ones((5, 5)) / 25,
}
SHAPES = [(17, 23, 3), (9, 8), (5, 31, 4), (4, 5, 3), (1, 7)]


def image(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    if dtype == np.uint16:
        return rng.integers(0, 65536, shape).astype(dtype)
    return (rng.standard_normal(shape) * 100).astype(dtype)


def calls(monkeypatch, run) -> list[tuple[str, tuple]]:
    """The (name, arguments) of every jitted filter call ``run()`` makes."""
    seen: list[tuple[str, tuple]] = []

    def record(name, args, twin, **options):
        seen.append((name, args))
        getattr(JIT, name)(*args)

    monkeypatch.setattr(compiled, "run", record)
    run()
    return seen


def fresh_outputs(name: str, args: tuple) -> tuple:
    """``args`` with new output arrays (filled with 7) in place of the ones given."""
    position, fields = OUTPUTS[name]
    bundle = list(args[position])
    for i in fields:
        if bundle[i] is not None:
            bundle[i] = np.full_like(bundle[i], 7)
    return (*args[:position], type(args[position])(*bundle), *args[position + 1 :])


def assert_twins_agree(name: str, args: tuple) -> None:
    jit, twin = fresh_outputs(name, args), fresh_outputs(name, args)
    getattr(JIT, name)(*jit)
    TWINS[name](*twin)
    position, fields = OUTPUTS[name]
    for i in fields:
        if jit[position][i] is not None:  # the same bytes, the sign of zero included
            got, expected = jit[position][i], twin[position][i]
            np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("border", BORDERS)
def test_twins_equal_the_jitted_paths(monkeypatch, dtype, kernel, border):
    """Float and integer outputs, every border, both paths, odd and even sizes."""
    k = KERNELS[kernel]
    methods = ["direct"] + (["separable"] if D.separable_factors(k) is not None else [])
    for shape, method in itertools.product(SHAPES, methods):
        if border == "valid" and (k.shape[0] > shape[0] or k.shape[1] > shape[1]):
            continue
        x = image(shape, dtype, seed=sum(shape))

        def run(x=x, method=method):
            C.correlate(x, k, border=border, cval=3.5, method=method)
            if x.dtype.kind == "u":
                C.correlate_to_integer(x, k, border=border, cval=3.5, method=method, bias=0.1)
                C.correlate_to_integer(
                    x, k, border=border, cval=3.5, method=method, map="abs", scale=3.7
                )

        for name, args in calls(monkeypatch, run):
            assert_twins_agree(name, args)


@pytest.mark.parametrize("mode", range(5))
@pytest.mark.parametrize("n", [1, 2, 5])
def test_extend_index_is_map_index(mode, n):
    """The vector border mapping equals the jitted one far beyond both ends."""
    got = borders.extend_index(n, -23, 50, mode)
    expected = [JIT.map_index(x, n, mode) for x in range(-23, 27)]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("bpp", [1, 3, 4, 6])
def test_png_filter_twin(bpp):
    """The PNG row filter's choice and bytes, on rows where every filter type wins somewhere."""
    rng = np.random.default_rng(bpp)
    noisy = rng.integers(0, 256, (20, 12 * bpp), dtype=np.uint8)
    smooth = np.cumsum(rng.integers(0, 3, (20, 12 * bpp)), axis=1).astype(np.uint8)
    src = np.vstack([noisy, smooth, smooth.T[: 12 * bpp, :20].repeat(bpp, 1)[:, : 12 * bpp]])
    src = np.ascontiguousarray(src)
    jit = np.zeros((src.shape[0], src.shape[1] + 1), np.uint8)
    twin = jit.copy()
    for r0, r1 in [(0, 7), (7, 30), (30, src.shape[0])]:
        JIT.png_filter(src, r0, r1, bpp, jit)
        png.png_filter(src, r0, r1, bpp, twin)
    np.testing.assert_array_equal(jit, twin)
    assert len(set(jit[:, 0])) >= 3


def test_uncached_call_runs_the_twin_and_schedules(monkeypatch):
    """With an empty cache and the background policy, a call runs the twin and asks for the
    specialisation to be compiled; the bytes are the compiled core's."""
    monkeypatch.setenv("CONVTOOL_COMPILE", "background")
    monkeypatch.setattr(compiled, "ready", lambda function, types: False)
    scheduled = []
    monkeypatch.setattr(compiled, "schedule", lambda name, types: scheduled.append(name))
    x = image((40, 33, 3), np.uint8, seed=9)
    k = KERNELS["distinct 5x5"]
    got = C.correlate(x, k, method="direct", border="mirror")
    assert scheduled == ["correlate_direct"]
    monkeypatch.setenv("CONVTOOL_COMPILE", "now")
    expected = C.correlate(x, k, method="direct", border="mirror")
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("special", ["signed zeros", "non-finite"])
@pytest.mark.parametrize("kernel", ["sobel 3x3", "distinct 7x5", "rank-1 5x7", "edge 1x2"])
@pytest.mark.parametrize("border", ["reflect", "constant", "valid"])
def test_twins_keep_the_sign_of_zero(monkeypatch, special, kernel, border):
    """Float outputs of flat black regions (+0 and −0 samples, negative and zero weights) have
    the jitted path's zero signs; inf and NaN samples give its NaNs and infinities."""
    k = KERNELS[kernel].copy()
    k[0, 0] = -abs(k[0, 0]) or -1.0
    rng = np.random.default_rng(len(kernel))
    x = rng.choice(np.array([0.0, -0.0, 0.0, 1.5, -2.0], np.float32), (13, 17, 2))
    x[3:9, 4:12] = -0.0  # a region where every product is a zero
    if special == "non-finite":
        x[5, 5, 0], x[2, 8, 1], x[10, 1, 0] = np.inf, np.nan, -np.inf
    methods = ["direct"] + (["separable"] if D.separable_factors(k) is not None else [])
    for method in methods:
        for dtype in (np.float32, np.float64):
            run = lambda: C.correlate(x.astype(dtype), k, border=border, cval=-0.0, method=method)  # noqa: E731, B023
            for name, args in calls(monkeypatch, run):
                assert_twins_agree(name, args)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("kshape", [(9, 9), (12, 7), (17, 16)])
@pytest.mark.parametrize("border", ["reflect", "mirror", "constant", "wrap", "valid"])
def test_fft_twins_equal_the_jitted_path(monkeypatch, dtype, kshape, border):
    """The FFT path's kernel spectrum and tiles, float and integer outputs, odd and even
    transform sizes (a radix-2 pass), tiles cut at the edges."""
    for shape in [(40, 37, 3), (19, 70), (70, 33, 2)]:
        if border == "valid" and (kshape[0] > shape[0] or kshape[1] > shape[1]):
            continue
        x = image(shape, dtype, seed=sum(shape) + kshape[0])
        k = distinct_kernel(*kshape, seed=kshape[1]) / (kshape[0] * kshape[1])

        def run(x=x, k=k):
            C.correlate(x, k, border=border, method="fft", cval=2.5)
            if x.dtype.kind == "u":
                C.correlate_to_integer(x, k, border=border, method="fft", bias=0.2, map="abs")

        for name, args in calls(monkeypatch, run):
            assert_twins_agree(name, args)


def array_types(numba_type) -> list:
    """The array types in a numba type, inside tuples and named tuples too."""
    if isinstance(numba_type, numba.types.Array):
        return [numba_type]
    if hasattr(numba_type, "types"):
        return [a for t in numba_type.types for a in array_types(t)]
    if hasattr(numba_type, "dtype") and hasattr(numba_type, "count"):  # a uniform tuple
        return array_types(numba_type.dtype)
    return []


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_read_only_images_reach_the_bundles_writeable(method):
    """A read-only image (``np.asarray`` of a Pillow image) is typed as a writeable array, in
    the bundles too: numba would otherwise compile the core again for it."""
    x = image((12, 10, 3), np.uint8, seed=4)
    x.flags.writeable = False
    k = KERNELS["rank-1 5x7"] if method == "separable" else KERNELS["distinct 3x3"]
    C.correlate(x, k, method=method, threads=1)
    C.correlate_to_integer(x, k, method=method, threads=1)
    for name in ("correlate_direct", "correlate_separable", "correlate_fft"):
        for signature in getattr(JIT, name).signatures:
            arrays = [a for t in signature for a in array_types(t)]
            assert arrays, signature
            assert all(a.mutable for a in arrays), signature
