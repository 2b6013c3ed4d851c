"""learn's numpy twins (convtool.twins.learn) give the jitted passes' bytes over stored integers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convtool import compiled
from convtool.bundles import LearnPair
from convtool.learn import lstsq
from convtool.learn.fit import learn_kernel
from convtool.twins import learn as nplearn

from conftest import stop_background_compilers

jit = compiled.core()  # the numba package, through its gateway

SIZES = [(1, 1), (3, 3), (2, 4), (4, 1), (5, 5)]


def pair(dtype: type, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W·C) input and a same-size target with samples at 0 and at the maximum."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    x = rng.integers(0, top, size=(23, 19 * channels), endpoint=True).astype(dtype)
    y = rng.integers(0, top, size=(23, 19 * channels), endpoint=True).astype(dtype)
    y[::4, ::3] = 0
    y[1::5, ::2] = top
    return x, y


def jit_and_twin(name: str, args: tuple, outputs: tuple[int, ...]) -> tuple[list, list]:
    """The outputs (argument positions) after ``jit.<name>`` and after its twin."""
    results = []
    for function in (getattr(jit, name), getattr(nplearn, name)):
        copies = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
        function(*copies)
        results.append([copies[i].tobytes() for i in outputs])
    return results[0], results[1]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("limits", [(0.0, None), (-math.inf, math.inf)])
def test_normal_equations_twin_gives_the_jitted_bytes(dtype, channels, size, limits):
    """Σ z zᵀ over the kept samples, clipped ones left out: the same bytes, added to a gram."""
    x, y = pair(dtype, channels)
    kh, kw = size
    lo, hi = limits[0], float(np.iinfo(dtype).max) if limits[1] is None else limits[1]
    m = kh * kw + 2
    gram = np.arange(m * m, dtype=np.float64).reshape(m, m)
    gram = gram + gram.T  # what an earlier band left: symmetric
    counts = np.array([5, 7], dtype=np.int64)
    target = y[kh // 2 :]  # a same-size target, its rows from oy on (as learn passes them)
    for nchunks in (1, 3):
        args = (LearnPair(x, channels, target, 0, kw // 2, lo, hi), kh, kw, nchunks, gram, counts)
        jitted, twin = jit_and_twin("learn_normal_equations", args, (4, 5))
        assert jitted == twin


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_normal_equations_twin_is_exact_for_centred_samples(dtype):
    """Samples minus an integer centre (float64, negative ones too) stay integers: exact."""
    x, y = pair(dtype, 3, seed=1)
    src = x.astype(np.float64) - 100.0
    target = y.astype(np.float64) - 90.0
    gram, counts = np.zeros((11, 11)), np.zeros(2, dtype=np.int64)
    bundle = LearnPair(src, 3, target, 1, 1, -90.0, np.iinfo(dtype).max - 90.0)
    args = (bundle, 3, 3, 4, gram, counts)
    jitted, twin = jit_and_twin("learn_normal_equations", args, (4, 5))
    assert jitted == twin


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("bias", [0.0, 0.3183098861837907])
def test_largest_error_twin_gives_the_jitted_bytes(dtype, channels, size, bias):
    """max |X ⋆ K + b − Y| over the kept samples, each residual rounded the same way."""
    x, y = pair(dtype, channels, seed=2)
    kh, kw = size
    kernel = np.random.default_rng(3).normal(size=size) / 3.0
    top = float(np.iinfo(dtype).max)
    for lo, hi in ((0.0, top), (-math.inf, math.inf)):
        out = np.array([0.125])
        args = (LearnPair(x, channels, y, kh // 2, kw // 2, lo, hi), kernel, bias * top, 2, out)
        jitted, twin = jit_and_twin("learn_largest_error", args, (4,))
        assert jitted == twin


def test_largest_error_keeps_a_larger_given_maximum():
    """``out[0]`` holds the maximum so far (over earlier pairs); a smaller one leaves it."""
    x, y = pair(np.uint8, 1)
    bundle = LearnPair(x, 1, y, 0, 0, -math.inf, math.inf)
    args = (bundle, np.zeros((1, 1)), 0.0, 1, np.array([1e9]))
    jitted, twin = jit_and_twin("learn_largest_error", args, (4,))
    assert jitted == twin == [np.array([1e9]).tobytes()]


def twins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every jitted call with a twin run the twin, compiling nothing in the background."""
    monkeypatch.setattr(compiled, "choose", lambda name, args, twin, **options: twin)


def photo_pair(dtype: type, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A crop of a real photograph and its 3x3 blur (rounded, clipped, offset to clip some)."""
    root = Path(__file__).parents[2] / "sample_images"
    img = np.asarray(Image.open(root / "astronaut.png").convert("RGB"))[100:160, 200:270]
    x = img.astype(np.float64) * (257.0 if dtype == np.uint16 else 1.0)
    if channels == 1:
        x = x[..., 1]
    kernel = np.array([[1.0, 2.0, 1.0], [2.0, 5.0, 2.0], [1.0, 2.0, 1.0]]) / 17.0
    from scipy import ndimage

    top = np.iinfo(dtype).max
    planes = x if channels == 3 else x[..., None]
    y = np.stack(
        [ndimage.correlate(planes[..., c], kernel, mode="reflect") for c in range(channels)], -1
    )
    y = np.rint(np.clip(y * 1.3 - 0.2 * top, 0, top)).astype(dtype)
    return x.astype(dtype), (y if channels == 3 else y[..., 0])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_learn_with_the_twins_gives_the_compiled_result(monkeypatch, dtype, channels, bias):
    """A whole fit, kernel and figures, is the same with a cold cache as with a warm one."""
    x, y = photo_pair(dtype, channels)
    warm = learn_kernel(x, y, "3x4", bias=bias).as_dict()
    twins_only(monkeypatch)
    cold = learn_kernel(x, y, "3x4", bias=bias).as_dict()
    assert cold == warm
    assert warm["pixels_clipped"] > 0


def test_learn_centres_a_nearly_flat_pair_and_the_twins_agree(monkeypatch):
    """Samples far from 0 against their range are centred on integers: still exact."""
    rng = np.random.default_rng(5)
    x = (200 + rng.integers(0, 2, size=(30, 40))).astype(np.uint8)
    y = x - np.uint8(1)
    warm = learn_kernel(x, y, 2, bias=True).as_dict()
    twins_only(monkeypatch)
    assert learn_kernel(x, y, 2, bias=True).as_dict() == warm
    assert warm["rank"] == 5


def test_learn_sums_in_bands_without_changing_a_bit(monkeypatch):
    """Passes over bands of rows (how 16-bit sums stay below 2**53) give the same fit."""
    x, y = photo_pair(np.uint16, 3)
    whole = learn_kernel(x, y, 3, bias=True).as_dict()
    monkeypatch.setattr(lstsq, "EXACT_SUM", 1 << 43)  # bands of a few rows
    assert learn_kernel(x, y, 3, bias=True).as_dict() == whole


def test_an_exact_fit_of_stored_integers_reports_no_error():
    """8-bit samples and their sums along a row fit [1, 1] with no error left."""
    x = np.random.default_rng(4).integers(0, 128, size=(6, 8)).astype(np.uint8)
    y = x[:, :-1] + x[:, 1:]
    result = learn_kernel(x, y, "1x2", bias=True, keep_clipped=True)
    np.testing.assert_allclose(result.weights, [[1.0, 1.0]], rtol=0, atol=1e-12)
    assert result.rmse < 1e-12 and result.max_error < 1e-12 and result.r2 == 1.0


@pytest.mark.slow
def test_cold_and_warm_runs_write_the_same_kernel(tmp_path):
    """A first run on an empty cache (the twins) and a warm one write the same bytes."""
    x, y = photo_pair(np.uint8, 3)
    Image.fromarray(x).save(tmp_path / "in.png")
    Image.fromarray(y).save(tmp_path / "out.png")
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "CONVTOOL_COMPILE": "background",
    }

    def run(name: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "convtool", "learn", "in.png", "out.png"]
        command += ["--size", "5", "--bias", "-o", name]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    cold = run("cold.txt")
    assert not list((tmp_path / "cache").rglob("*learn_normal_equations*.nbi"))
    assert stop_background_compilers(tmp_path / "cache") == 1  # one was asked for
    env["CONVTOOL_COMPILE"] = "now"  # compiled here, at the tests' priority
    warm = run("warm.txt")
    assert (tmp_path / "cold.txt").read_bytes() == (tmp_path / "warm.txt").read_bytes()
    assert cold.stderr == warm.stderr
    assert list((tmp_path / "cache").rglob("*learn_normal_equations*.nbi"))
