"""``learn_kernel`` as a Python user calls it: argument types, units of mixed pairs, and
round trips through ``correlate`` on every border, checked against scipy.ndimage."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from convtool import LearnError, UsageError, convolve, correlate, learn_kernel

from references import corr2d

BORDERS = ("reflect", "mirror", "nearest", "wrap", "constant")
# powers of two in a 2x3: any flip, transpose or shift gives another matrix
K23 = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]]) / 63 - 0.2


def textbook() -> tuple[np.ndarray, np.ndarray]:
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x, corr2d(x, np.array([[1.0, -1.0]]))


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("border", [*BORDERS, "valid"])
def test_kernel_applied_with_any_border_is_learned_back(border):
    """learn_kernel(x, correlate(x, K, border)) is K whatever the border (it is never used)."""
    x = np.random.default_rng(3).random((17, 19))
    y = correlate(x, K23, border=border, cval=0.7)
    if border != "valid":  # the API's result is scipy's, borders included
        np.testing.assert_allclose(
            y, ndimage.correlate(x, K23, mode=border, cval=0.7), rtol=0, atol=1e-12
        )
    result = learn_kernel(x, y, "2x3")
    np.testing.assert_allclose(result.weights, K23, rtol=0, atol=1e-9)
    assert result.warnings == () and result.rank == 6


@pytest.mark.parametrize("border", BORDERS)
def test_convolution_with_a_bias_is_learned_back_in_convolution_orientation(border):
    x = np.random.default_rng(4).random((15, 14, 3))
    y = convolve(x, K23, border=border) + 0.25
    result = learn_kernel(x, y, (2, 3), convolve=True, bias=True)
    np.testing.assert_allclose(result.weights, K23, rtol=0, atol=1e-9)
    assert result.bias == pytest.approx(0.25, abs=1e-9)
    np.testing.assert_allclose(convolve(x, result.weights, border=border) + result.bias, y,
                               rtol=0, atol=1e-9)  # fmt: skip


def test_noise_gives_the_least_squares_kernel():
    """With noise the kernel is the one numpy's lstsq gives on the patch matrix."""
    rng = np.random.default_rng(5)
    x = rng.random((30, 26))
    y = corr2d(x, K23) + rng.normal(0, 0.01, (29, 24))
    patches = np.array(
        [x[i : i + 2, j : j + 3].ravel() for i in range(29) for j in range(24)]
    )  # fmt: skip
    expected = np.linalg.lstsq(patches, y.ravel(), rcond=None)[0].reshape(2, 3)
    result = learn_kernel(x, y, "2x3")
    np.testing.assert_allclose(result.weights, expected, rtol=0, atol=1e-10)
    assert np.abs(result.weights - K23).max() < 0.02
    assert result.rmse == pytest.approx(0.01, rel=0.15)


# --- units of mixed pairs -------------------------------------------------------------------


def test_uint8_input_with_a_raw_float_target_warns_about_the_factor():
    """correlate does not scale uint8; learn does: the mixture gives 255·K, and says so."""
    x = (np.random.default_rng(6).random((20, 20)) * 255).astype(np.uint8)
    y = correlate(x, "sobel-x")  # float32 in stored units
    result = learn_kernel(x, y, 3)
    np.testing.assert_allclose(
        result.weights, 255 * np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), atol=1e-3
    )
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(
        "input 1 is uint8, scaled to [0, 1] (÷ 255), but target 1 is float32, taken as it is"
    )
    assert "255× off" in result.warnings[0]
    # the advice works: both as floats in stored units gives K itself, with no warning
    fixed = learn_kernel(x.astype(np.float64), y, 3)
    np.testing.assert_allclose(fixed.weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], atol=1e-4)
    assert fixed.warnings == ()


def test_float_input_with_a_uint16_target_warns_too():
    x = np.random.default_rng(7).random((12, 12))
    y = np.round(np.clip(correlate(x, "box"), 0, 1) * 65535).astype(np.uint16)
    result = learn_kernel(x, y, 3)
    assert any(
        w.startswith("target 1 is uint16, scaled to [0, 1] (÷ 65535), but input 1 is float64")
        for w in result.warnings
    )


def test_pairs_in_the_same_units_do_not_warn():
    """Two 8-bit arrays, two float ones, or a float target declared integer-stored."""
    x = (np.random.default_rng(8).random((16, 16)) * 200 + 20).astype(np.uint8)
    y8 = np.round(correlate(x, "box")).astype(np.uint8)
    assert learn_kernel(x, y8, 3).warnings == ()
    y = correlate(x.astype(np.float32) / 255, "box")
    assert learn_kernel(x, y, 3, clip_limits=[(0.0, 1.0)]).warnings == ()
    assert learn_kernel(x.astype(np.float32) / 255, y, 3).warnings == ()


# --- arguments ------------------------------------------------------------------------------


def test_numpy_scalars_are_accepted_for_size_lr_epochs_and_seed():
    x, y = textbook()
    plain = learn_kernel(x, y, "1x2", method="gd", lr=0.03, epochs=10, seed=0)
    numpy_args = learn_kernel(
        x, y, np.array([1, 2]), method="gd", lr=np.float32(0.03), epochs=np.int32(10),
        seed=np.int64(0),
    )  # fmt: skip
    # float32(0.03) is not exactly 0.03: the same steps within that rounding
    np.testing.assert_allclose(numpy_args.weights, plain.weights, rtol=1e-6)
    np.testing.assert_allclose(numpy_args.weights, [[0.988482, -0.988489]], atol=1e-6)


@pytest.mark.parametrize("seed", [-1, 1.5, "abc", True])
def test_a_seed_that_is_not_a_whole_number_from_zero_is_a_usage_error(seed):
    x, y = textbook()
    with pytest.raises(UsageError, match=r"--seed must be a whole number ≥ 0; got"):
        learn_kernel(x, y, "1x2", method="gd", seed=seed)


@pytest.mark.parametrize("limits", [[(1.0, 0.0)], [(0.0,)], [(0.0, float("nan"))], [3.0], "ab"])
def test_clip_limits_must_be_pairs_lo_below_hi(limits):
    """(1, 0) used to leave every sample out and return a zero kernel without a word."""
    x, y = textbook()
    with pytest.raises(UsageError, match="clip_limits"):
        learn_kernel(x, y, "1x2", clip_limits=limits)


def test_names_must_be_pairs():
    x, y = textbook()
    with pytest.raises(UsageError, match=r"names needs one \(input name, target name\) pair"):
        learn_kernel(x, y, "1x2", names=["x.txt"])
    with pytest.raises(LearnError, match=r"^y\.txt is 6x7 but x\.txt is 6x8"):
        learn_kernel(x, y, "1x3", names=[("x.txt", "y.txt")])


def test_nested_lists_for_one_image_are_explained():
    """A list is a list of pairs' arrays; rows of numbers get a hint, not '1 dimensions'."""
    x, y = textbook()
    with pytest.raises(LearnError, match=r"inputs: got a list of 6 rows of numbers.*np\.asarray"):
        learn_kernel(x.tolist(), y.tolist(), "1x2")
    result = learn_kernel([x.tolist()], [y.tolist()], "1x2")
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_arrays_that_are_not_real_numbers_are_refused(dtype):
    x = np.ones((5, 5), dtype=dtype)
    with pytest.raises(LearnError, match=f"input 1 has dtype {np.dtype(dtype)}"):
        learn_kernel(x, np.ones((5, 5)), 3)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_any_memory_layout_gives_the_same_kernel(layout):
    base = np.random.default_rng(9).random((40, 45))
    x = {"fortran": np.asfortranarray(base), "strided": base[::2, ::3], "readonly": base}[layout]
    if layout == "readonly":
        x = x.copy()
        x.setflags(write=False)
    y = correlate(np.ascontiguousarray(x), K23)
    if layout == "fortran":
        y = np.asfortranarray(y)
    np.testing.assert_allclose(learn_kernel(x, y, "2x3").weights, K23, rtol=0, atol=1e-9)


# --- gradient descent that has not converged ------------------------------------------------


def test_gradient_descent_short_of_the_minimum_says_so():
    """A blur converges slowly: 100 default steps end far above the least-squares fit."""
    rng = np.random.default_rng(10)
    x = ndimage.uniform_filter(rng.random((40, 40)), 3)  # smooth, like a photograph
    y = correlate(x, "gaussian:sigma=1,size=5", border="valid")
    exact = learn_kernel(x, y, 5)
    result = learn_kernel(x, y, 5, method="gd", seed=0)
    assert result.rmse is not None and exact.rmse is not None
    assert result.rmse > 10 * exact.rmse
    assert result.warnings == (
        f"gradient descent stopped after 100 epochs at RMSE {result.rmse:.6g}, while the "
        f"least-squares kernel reaches {exact.rmse:.6g}: the weights have not converged "
        "(blurs and other smooth kernels converge slowly); use more --epochs, or --method "
        "lstsq (the default) for the exact fit",
    )


def test_converged_gradient_descent_does_not_warn():
    x, y = textbook()
    result = learn_kernel(x, y, "1x2", method="gd", seed=0)  # default step: converges
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], atol=1e-6)
    assert result.warnings == ()


def test_a_pytorch_batch_is_refused_with_the_index_to_take():
    x, y = textbook()
    with pytest.raises(LearnError, match=r"\(N, C, H, W\) batch.*give input 1\[0, 0\]"):
        learn_kernel(x[None, None], y[None, None], "1x2")
    np.testing.assert_allclose(
        learn_kernel(x[None, None][0, 0], y, "1x2").weights, [[1.0, -1.0]], atol=1e-12
    )


def test_read_only_arrays_reach_the_jitted_passes_writeable(monkeypatch):
    """numba compiles read-only arrays as another type: every pass again, ~15 s cold."""
    from convtool import compiled

    seen = []
    original = compiled.call

    def spy(name, args):
        if name == "learn_normal_equations":
            seen.append((args[0].src.flags.writeable, args[0].target.flags.writeable))
        return original(name, args)

    monkeypatch.setattr(compiled, "call", spy)
    x, y = textbook()
    x.setflags(write=False)
    y.setflags(write=False)
    result = learn_kernel(x, y, "1x2")
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], atol=1e-12)
    assert seen == [(True, True)]
    assert not x.flags.writeable  # the caller's arrays are left as they were


def test_pairs_too_small_alone_determine_the_kernel_together():
    """A 4x4 pair gives 4 samples for 9 unknowns; three pairs give 12 and the exact kernel."""
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 3))
    xs = [rng.random((4, 4)) for _ in range(3)]
    ys = [correlate(x, kernel) for x in xs]
    alone = learn_kernel(xs[0], ys[0], 3)
    assert (alone.rank, alone.pixels_used) == (4, 4)
    assert alone.warnings[0].startswith("the data determine only 4 of the 9 unknowns")
    # the minimum-norm answer: the pseudo-inverse of the 4 × 9 patch matrix
    patches = np.array([xs[0][i : i + 3, j : j + 3].ravel() for i in range(2) for j in range(2)])
    target = ys[0][1:3, 1:3].ravel()
    np.testing.assert_allclose(
        alone.weights.ravel(), np.linalg.pinv(patches) @ target, rtol=0, atol=1e-9
    )
    together = learn_kernel(xs, ys, 3)
    assert (together.rank, together.pixels_used, together.warnings) == (9, 12, ())
    np.testing.assert_allclose(together.weights, kernel, rtol=0, atol=1e-9)


def test_a_full_output_is_refused_with_the_crop_that_makes_it_valid():
    """scipy.signal's mode='full' output; the crop the message gives is learned exactly."""
    from scipy import signal

    x = np.random.default_rng(11).random((9, 10))
    full = signal.correlate2d(x, K23, mode="full")  # 10x12
    with pytest.raises(LearnError) as info:
        learn_kernel(x, full, "2x3")
    assert str(info.value).endswith(
        "it is the size of a 'full' output (scipy.signal's mode='full'), which learn does not "
        "read: crop it to the valid part, rows 1 to 8 and columns 2 to 9 (target[1:9, 2:10])"
    )
    result = learn_kernel(x, full[1:9, 2:10], "2x3")
    np.testing.assert_allclose(result.weights, K23, rtol=0, atol=1e-10)


# --- data far from zero ---------------------------------------------------------------------


@pytest.mark.parametrize("offset", [1e5, 1e6, -3e5])
@pytest.mark.parametrize("bias", [False, True])
def test_values_far_from_zero_keep_their_kernel(offset, bias):
    """Matrices around 10⁵ (raw sensor counts, elevations) lost their kernel: rank 1 of 6 and
    weights off by 0.34, blamed on the data; the sums are now taken from centred data."""
    rng = np.random.default_rng(12)
    x = offset + rng.random((40, 37))
    y = corr2d(x, K23) + (0.5 if bias else 0.0)
    result = learn_kernel(x, y, "2x3", bias=bias)
    assert (result.rank, result.warnings) == (6 + bias, ())
    np.testing.assert_allclose(result.weights, K23, rtol=0, atol=1e-8)
    if bias:
        # b sits beside c·ΣK ≈ 10⁵ in y: float64 targets of that size give it to ~1e-4
        assert result.bias == pytest.approx(0.5, abs=1e-4)


def test_noisy_values_far_from_zero_match_lstsq_on_the_patch_matrix():
    """Several pairs at different offsets, with noise: numpy's QR-based lstsq is the oracle."""
    rng = np.random.default_rng(13)
    xs = [2e5 + rng.random((20, 21)), 3e5 + rng.random((18, 25))]
    ys = [corr2d(x, K23) + rng.normal(0, 0.01, (x.shape[0] - 1, x.shape[1] - 2)) for x in xs]
    rows = [x[i : i + 2, j : j + 3].ravel() for x in xs for i in range(x.shape[0] - 1)
            for j in range(x.shape[1] - 2)]  # fmt: skip
    expected = np.linalg.lstsq(np.array(rows), np.concatenate([y.ravel() for y in ys]), rcond=None)
    result = learn_kernel(xs, ys, "2x3")
    np.testing.assert_allclose(result.weights.ravel(), expected[0], rtol=0, atol=1e-7)
    assert result.rank == 6


def test_a_flat_input_far_from_zero_still_fixes_only_the_sum():
    x = np.full((12, 12), 5e5)
    result = learn_kernel(x, np.full((12, 12), 5e5 * 2.5), 3)
    np.testing.assert_allclose(result.weights, np.full((3, 3), 2.5 / 9), rtol=1e-9)
    assert result.rank == 1 and "the input is flat" in result.warnings[0]


FAR_MEMORY_SCRIPT = """
import numpy as np
from convtool import learn_kernel
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
rng = np.random.default_rng(0)
small = 1e5 + rng.random((20, 20), dtype=np.float32)
learn_kernel(small, small, 7)  # compiles before the measure
x = 1e5 + rng.random((1000, 1000), dtype=np.float32)
y = 1e5 + rng.random((1000, 1000), dtype=np.float32)
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')
before = rss('VmRSS:')
learn_kernel(x, y, 7)
print(before, rss('VmHWM:'))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_centred_sums_stay_within_the_memory_of_the_plain_ones():
    """Centring copies bands of rows, not images: 7×7 on 1000×1000 around 10⁵ grows the peak
    by less than the two images (8 MB) plus 24 MB, as the plain pass does."""
    run = subprocess.run(
        [sys.executable, "-c", FAR_MEMORY_SCRIPT], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    before, peak = map(int, run.stdout.split())
    assert peak - before < 8 * 1000 * 1000 + 24 * 2**20, (before, peak)
