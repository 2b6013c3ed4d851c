"""``convtool.learn_kernel``: exact recovery, the textbook's gradient descent, clipped samples,
warnings and errors, the jitted passes against a reference built with the patch matrix."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convtool import LearnError, UsageError, convolve, correlate, learn_kernel, load_kernel
from convtool.bundles import LearnPair
from convtool.choices import DEFAULT_EPOCHS
from convtool.errors import KernelError
from convtool.kernels.files import save_kernel
from convtool.learn.fit import parse_size
from convtool.learn.gd import INIT_STD

from references import corr2d

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
BORDERS = ("reflect", "mirror", "nearest", "wrap", "constant")


def textbook_pair() -> tuple[np.ndarray, np.ndarray]:
    """The 6×8 image (ones, columns 2–5 zero) and its edge map with [1, −1], valid size 6×7."""
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x, corr2d(x, np.array([[1.0, -1.0]]))


def patches(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The (samples × kh·kw) patch matrix of the valid outputs, in (i, j, c) order, by loops."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, np.newaxis]
    h, w, c = x.shape
    rows = []
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            for ch in range(c):
                rows.append([x[i + a, j + b, ch] for a in range(kh) for b in range(kw)])
    return np.array(rows).reshape(-1, kh * kw)


def gray_crop(name: str = "camera.png", size: int = 96) -> np.ndarray:
    """A real photograph, grey, cropped to size × size (uint8)."""
    img = cv2.imread(str(SAMPLES / name), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return np.ascontiguousarray(img[200 : 200 + size, 200 : 200 + size])


# --- exact recovery -----------------------------------------------------------------------

SIZES = [(1, 2), (2, 1), (2, 2), (3, 3), (1, 7), (3, 1), (4, 5), (5, 4), (2, 6), (6, 6), (7, 7)]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(("kh", "kw"), SIZES)
def test_recovers_random_kernels_from_float_matrices(kh, kw, bias):
    """Several pairs of different sizes, same-size targets (any border) and valid ones mixed."""
    rng = np.random.default_rng(kh * 10 + kw)
    kernel = rng.standard_normal((kh, kw))
    b = float(rng.standard_normal()) if bias else 0.0
    xs = [rng.standard_normal((kh + 9 + 3 * i, kw + 14 - 2 * i)) for i in range(4)]
    ys = [correlate(x, kernel, border=BORDERS[i]) + b for i, x in enumerate(xs[:3])]
    ys.append(correlate(xs[3], kernel, border="valid") + b)
    result = learn_kernel(xs, ys, (kh, kw), bias=bias)
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=1e-8)
    assert abs(result.bias - b) <= 1e-8
    assert result.rank == result.unknowns == kh * kw + bias
    assert result.warnings == ()
    expected_used = sum((x.shape[0] - kh + 1) * (x.shape[1] - kw + 1) for x in xs)
    assert (result.pixels_used, result.pixels_clipped) == (expected_used, 0)
    assert result.rmse is not None and result.rmse < 1e-12
    assert result.r2 is not None and abs(result.r2 - 1) < 1e-12


def test_recovers_a_kernel_from_colour_matrices_float32():
    """(H, W, 3) float32 pairs: one kernel for the three channels."""
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((3, 4))
    xs = [rng.random((40, 50, 3), dtype=np.float32), rng.random((33, 21, 3), dtype=np.float32)]
    ys = [correlate(xs[0], kernel, border="mirror"), correlate(xs[1], kernel, border="valid")]
    result = learn_kernel(xs, ys, "3x4")
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=2e-5)
    assert result.pixels_used == 3 * (38 * 47 + 31 * 18)


@settings(max_examples=25, deadline=None)
@given(
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    extra_h=st.integers(0, 12),
    extra_w=st.integers(0, 12),
    seed=st.integers(0, 2**16),
)
def test_round_trip_apply_learn_apply(kh, kw, extra_h, extra_w, seed):
    """apply(X, learn(X, apply(X, K))) == apply(X, K), whenever the data determine K."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((kh + extra_h + 2, kw + extra_w + 2))
    kernel = rng.standard_normal((kh, kw))
    y = correlate(x, kernel)
    result = learn_kernel(x, y, (kh, kw))
    if result.rank == result.unknowns:
        np.testing.assert_allclose(correlate(x, result.kernel), y, rtol=0, atol=1e-9)
    else:  # fewer valid pixels than weights: the fit still reproduces the pixels it used
        assert result.warnings
        np.testing.assert_allclose(
            correlate(x, result.kernel, border="valid"),
            correlate(x, kernel, border="valid"),
            rtol=0,
            atol=1e-9,
        )


def test_convolve_learns_the_kernel_in_convolution_orientation():
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((3, 2))
    x = rng.standard_normal((30, 31))
    y = convolve(x, kernel)
    result = learn_kernel(x, y, "3x2", convolve=True)
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=1e-10)
    assert result.convolve and result.as_dict()["orientation"] == "convolution"
    plain = learn_kernel(x, y, "3x2")
    np.testing.assert_allclose(plain.weights, kernel[::-1, ::-1], rtol=0, atol=1e-10)


def test_integer_arrays_follow_the_pixel_policy():
    """A uint8 input is scaled to [0, 1]; a float target made from the scaled input fits exactly."""
    img = gray_crop(size=48)
    kernel = np.array([[0.25, 0.5], [-0.125, 0.375]])
    y = correlate(img.astype(np.float64) / 255, kernel, border="valid")
    result = learn_kernel(img, y, 2)
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=1e-6)


# --- the textbook -------------------------------------------------------------------------


def test_textbook_lstsq_gives_exactly_one_minus_one():
    x, y = textbook_pair()
    result = learn_kernel(x, y, "1x2")
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], rtol=0, atol=1e-12)
    assert (result.pixels_used, result.rmse, result.max_error) == (42, 0.0, 0.0)


def textbook_loop(x, y, k, lr, epochs):
    """The book's loop in plain numpy: l = Σ(Ŷ − Y)², K −= lr · ∂l/∂K (loss before the update)."""
    losses = []
    for _ in range(epochs):
        r = k[0] * x[:, :-1] + k[1] * x[:, 1:] - y
        losses.append(float((r * r).sum()))
        k = k - lr * np.array([2 * (r * x[:, :-1]).sum(), 2 * (r * x[:, 1:]).sum()])
    return k, losses


def test_textbook_gradient_descent_ends_near_one_minus_one():
    """--size 1x2 --method gd --lr 0.03 --epochs 10, as the book (0.9873, −0.9762 there)."""
    x, y = textbook_pair()
    seen = []
    result = learn_kernel(
        x,
        y,
        "1x2",
        method="gd",
        lr=0.03,
        epochs=10,
        seed=0,
        progress=lambda epoch, loss: seen.append(epoch),
    )
    start = np.random.default_rng(0).normal(0.0, INIT_STD, size=2)
    expected, losses = textbook_loop(x, y, start, 0.03, 10)
    np.testing.assert_allclose(result.weights[0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.loss_history, losses, rtol=1e-12)
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], rtol=0, atol=0.03)
    assert seen == list(range(1, 11))
    assert losses[0] > 10 and losses[-1] < 0.01
    assert all(a > b for a, b in itertools.pairwise(losses))


def test_gradient_descent_default_step_is_one_over_the_largest_hessian_eigenvalue():
    """Hessian 2·XᵀX = 2·[[18, 12], [12, 18]], eigenvalues 12 and 60: lr = 1/60."""
    x, y = textbook_pair()
    result = learn_kernel(x, y, "1x2", method="gd", seed=1)
    assert result.lr == pytest.approx(1 / 60, rel=1e-12)
    assert result.epochs == DEFAULT_EPOCHS
    np.testing.assert_allclose(result.weights, [[1.0, -1.0]], rtol=0, atol=1e-8)
    assert all(a >= b for a, b in itertools.pairwise(result.loss_history))


def test_gradient_descent_with_bias():
    rng = np.random.default_rng(3)
    x = rng.random((40, 40))
    kernel = np.array([[0.5, -0.25], [0.125, 0.25]])
    y = correlate(x, kernel, border="valid") + 0.3
    result = learn_kernel(x, y, 2, bias=True, method="gd", epochs=3000, seed=0)
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=1e-4)
    assert result.bias == pytest.approx(0.3, abs=1e-4)


def test_gradient_descent_that_diverges_is_an_error():
    x, y = textbook_pair()
    with pytest.raises(LearnError, match=r"diverged at epoch \d+ .*smaller --lr"):
        learn_kernel(x, y, "1x2", method="gd", lr=10.0, epochs=1000, seed=0)


# --- clipped samples ----------------------------------------------------------------------


def sobel_uint8(img: np.ndarray) -> np.ndarray:
    """OpenCV's Sobel x derivative saved as uint8: negatives clipped to 0, overflow to 255."""
    return cv2.Sobel(img, cv2.CV_8U, 1, 0, ksize=3)


def test_clipped_sobel_gives_the_exact_kernel_back():
    img = cv2.GaussianBlur(gray_crop(), (3, 3), 0.8)
    edges = sobel_uint8(img)
    assert (edges == 0).mean() > 0.3  # a real share of the map was clipped
    result = learn_kernel(img, edges, 3)
    np.testing.assert_allclose(
        result.weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], rtol=0, atol=1e-5
    )
    assert result.pixels_clipped == int(
        ((edges[1:-1, 1:-1] == 0) | (edges[1:-1, 1:-1] == 255)).sum()
    )
    assert result.pixels_used + result.pixels_clipped == 94 * 94
    kept = learn_kernel(img, edges, 3, keep_clipped=True)
    assert kept.pixels_clipped == 0
    assert np.abs(kept.weights - [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).max() > 0.3


def test_mostly_clipped_target_warns_and_points_to_keep_clipped():
    """A binary target (only 0 and 255): everything is left out, and the warning says why."""
    img = gray_crop(size=32)
    binary = np.where(img > 128, 255, 0).astype(np.uint8)
    result = learn_kernel(img, binary, 3)
    assert result.pixels_used == 0 and result.pixels_clipped == 30 * 30
    assert (result.rmse, result.max_error, result.r2) == (None, None, None)
    np.testing.assert_array_equal(result.weights, np.zeros((3, 3)))
    assert any("--keep-clipped" in w and "900 of the 900" in w for w in result.warnings)
    assert any("only 0 target samples could be used" in w for w in result.warnings)
    kept = learn_kernel(img, binary, 3, keep_clipped=True)
    assert kept.pixels_used == 900 and kept.warnings == ()


def test_float_targets_are_never_clipped():
    x = gray_crop(size=20).astype(np.float32) / 255
    y = np.clip(correlate(x, "sobel-x"), 0, 1)
    result = learn_kernel(x, y, 3)
    assert result.pixels_clipped == 0 and result.pixels_used == 18 * 18


def test_clip_limits_mark_float_targets_as_integer_stored():
    img = cv2.GaussianBlur(gray_crop(), (3, 3), 0.8)
    edges = sobel_uint8(img).astype(np.float32) / 255
    result = learn_kernel(img.astype(np.float32) / 255, edges, 3, clip_limits=[(0.0, 1.0)])
    np.testing.assert_allclose(
        result.weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], rtol=0, atol=1e-5
    )


# --- 8-bit targets from OpenCV ------------------------------------------------------------

GAUSSIAN = cv2.getGaussianKernel(5, 1.0) @ cv2.getGaussianKernel(5, 1.0).T
SHARPEN = np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
EMBOSS = np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


@pytest.mark.parametrize(
    ("kernel", "bias"),
    [(GAUSSIAN, 0.0), (SHARPEN, 0.0), (EMBOSS, 0.5)],
    ids=["gauss", "sharp", "emboss"],
)
def test_recovers_opencv_filter2d_from_8bit_targets(kernel, bias):
    """filter2D on uint8 (rounded, saturated): within 1e-2; re-applying is within a grey level."""
    img = np.ascontiguousarray(cv2.imread(str(SAMPLES / "astronaut.png"))[100:260, 150:310])
    target = cv2.filter2D(img, -1, kernel, delta=255 * bias)
    result = learn_kernel(img, target, kernel.shape, bias=bias != 0)
    np.testing.assert_allclose(result.weights, kernel, rtol=0, atol=1e-2)
    assert abs(result.bias - bias) <= 1e-2
    again = correlate(img.astype(np.float32) / 255, result.kernel, border="mirror") + result.bias
    again = np.clip(np.rint(again * 255), 0, 255)
    assert np.abs(again - target).max() <= 1


# --- warnings and errors ------------------------------------------------------------------


def test_flat_image_warns_and_gives_the_minimum_norm_kernel():
    x = np.full((20, 30), 0.5)
    result = learn_kernel(x, np.full((20, 30), 0.25), 3)
    np.testing.assert_allclose(result.weights, np.full((3, 3), 0.5 / 9), rtol=1e-12)
    assert result.rank == 1
    (warning,) = result.warnings
    assert warning.startswith("the data determine only 1 of the 9 unknowns (3x3 weights): ")
    assert "the input is flat" in warning and "minimum-norm" in warning


def test_too_few_pixels_warns_and_matches_the_pseudo_inverse():
    """A 3×4 input with a 3×3 kernel gives 2 equations for 9 weights: numpy's minimum norm."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    y = rng.standard_normal((1, 2))
    result = learn_kernel(x, y, 3)
    expected = np.linalg.lstsq(patches(x, 3, 3), y.ravel(), rcond=None)[0]
    np.testing.assert_allclose(result.weights.ravel(), expected, rtol=0, atol=1e-12)
    assert result.rank == 2
    assert "only 2 target samples could be used" in result.warnings[0]


def test_ramp_is_rank_deficient_with_a_reason():
    i, j = np.mgrid[0:30, 0:40]
    x = 0.01 * i + 0.02 * j
    result = learn_kernel(x, correlate(x, "sobel-x"), 3, bias=True)
    assert result.rank is not None and result.rank < 10
    assert "do not vary enough" in result.warnings[0]


def test_mismatched_shapes_name_the_sizes():
    x = np.zeros((6, 8))
    with pytest.raises(LearnError) as exc:
        learn_kernel(x, np.zeros((5, 5)), "1x2")
    assert str(exc.value) == (
        "target 1 is 5x5 but input 1 is 6x8: with a 1x2 kernel the target must be 6x8 (same "
        "size) or 6x7 (valid output); it is the valid output of a 2x4 kernel: if that is the "
        "filter, use --size 2x4; otherwise check that the pair is right"
    )
    for wrong in (np.zeros((7, 5)), np.zeros((1, 1))):  # larger; a kernel learn would refuse
        with pytest.raises(LearnError, match="check that the pair is right and that --size match"):
            learn_kernel(np.zeros((80, 80)) if wrong.shape == (1, 1) else x, wrong, "1x2")
    with pytest.raises(LearnError, match="input 1 has 3 channels but target 1 has 1"):
        learn_kernel(np.zeros((6, 8, 3)), np.zeros((6, 8)), 3)
    with pytest.raises(LearnError, match="2 inputs but 1 targets"):
        learn_kernel([x, x], [x], 3)


def test_kernel_larger_than_an_input_is_an_error():
    with pytest.raises(LearnError) as exc:
        learn_kernel(
            [np.zeros((20, 20)), np.zeros((6, 8))], [np.zeros((20, 20)), np.zeros((6, 8))], "7x9"
        )
    assert str(exc.value) == (
        "the 7x9 kernel is larger than input 2 (6x8); the kernel must fit inside every input: "
        "choose a --size of at most 6x8"
    )


def test_sizes_parse_and_absurd_ones_are_refused():
    assert parse_size("1x2") == (1, 2)
    assert parse_size("7") == (7, 7)
    assert parse_size(" 3 X 5 ") == (3, 5)
    assert parse_size(4) == (4, 4)
    assert parse_size((2, 3)) == (2, 3)
    for bad in ("", "3x", "x3", "-1", "2.5", "3x3x3", "0x2"):
        with pytest.raises(UsageError):
            parse_size(bad)
    with pytest.raises(UsageError, match="has 4225 weights; learn solves for at most 4096"):
        parse_size("65")


def test_gd_options_are_refused_with_lstsq_and_bad_values_are_errors():
    x, y = textbook_pair()
    with pytest.raises(UsageError, match="--lr, --seed only apply to --method gd"):
        learn_kernel(x, y, "1x2", lr=0.1, seed=1)
    with pytest.raises(UsageError, match="unknown method 'sgd'"):
        learn_kernel(x, y, "1x2", method="sgd")
    with pytest.raises(UsageError, match="learning rate --lr must be a finite number > 0"):
        learn_kernel(x, y, "1x2", method="gd", lr=-1.0)
    with pytest.raises(UsageError, match="--epochs must be a whole number"):
        learn_kernel(x, y, "1x2", method="gd", epochs=0)
    with pytest.raises(LearnError, match="NaN or infinite"):
        learn_kernel(np.full((4, 4), np.nan), np.zeros((4, 4)), 2)


# --- the jitted passes against the patch matrix -------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("kh", "kw", "channels", "same"), [(3, 3, 1, True), (2, 5, 3, False)])
def test_normal_equations_equal_the_patch_matrix_reference(dtype, kh, kw, channels, same):
    """XᵀX, Σx, Xᵀy, N, Σy, Σy² against Zᵀ Z of an explicit patch matrix, clipped rows dropped."""
    from convtool import compiled

    jit = compiled.core()

    rng = np.random.default_rng(7)
    h, w = 23, 31
    x = rng.random((h, w, channels)).astype(dtype)
    ho, wo = h - kh + 1, w - kw + 1
    yv = np.round(rng.random((ho, wo, channels)) * 4) / 4  # values 0, 0.25 .. 1: some clipped
    if same:
        y = np.zeros((h, w, channels))
        y[kh // 2 : kh // 2 + ho, kw // 2 : kw // 2 + wo] = yv
        oy, ox = kh // 2, kw // 2
    else:
        y, oy, ox = yv, 0, 0
    y = y.astype(dtype)
    p = patches(x, kh, kw)
    yy = yv.astype(dtype).astype(np.float64).ravel()
    keep = (yy > 0) & (yy < 1)
    z = np.column_stack([p, np.ones(len(p)), yy])[keep]
    gram = np.zeros((kh * kw + 2,) * 2)
    counts = np.zeros(2, dtype=np.int64)
    bundle = LearnPair(x.reshape(h, -1), channels, y.reshape(y.shape[0], -1), oy, ox, 0.0, 1.0)
    jit.learn_normal_equations(bundle, kh, kw, 3, gram, counts)
    np.testing.assert_allclose(gram, z.T @ z, rtol=1e-12, atol=1e-12)
    assert counts.tolist() == [int(keep.sum()), int((~keep).sum())]
    # and the solution equals numpy's least squares on the patch matrix
    result = learn_kernel(x, y, (kh, kw), bias=True, clip_limits=[(0.0, 1.0)])
    expected = np.linalg.lstsq(z[:, :-1], z[:, -1], rcond=None)[0]
    np.testing.assert_allclose(result.weights.ravel(), expected[:-1], rtol=0, atol=1e-8)
    assert result.bias == pytest.approx(expected[-1], abs=1e-8)
    residual = z[:, :-1] @ np.append(result.weights.ravel(), result.bias) - z[:, -1]
    assert result.rmse == pytest.approx(np.sqrt(np.mean(residual**2)), rel=1e-9)
    assert result.max_error == pytest.approx(np.abs(residual).max(), rel=1e-9)
    sst = ((z[:, -1] - z[:, -1].mean()) ** 2).sum()
    assert result.r2 == pytest.approx(1 - (residual**2).sum() / sst, rel=1e-9)


def test_residual_pass_equals_the_patch_matrix_reference():
    """Gradient Σ r·x, Σ r, Σ r², max |r| and the counts of learn_residuals, by the patch matrix."""
    from convtool import compiled

    jit = compiled.core()

    rng = np.random.default_rng(8)
    x = rng.standard_normal((17, 19, 2))
    y = rng.standard_normal((15, 16, 2))
    kernel = rng.standard_normal((3, 4))
    p = patches(x, 3, 4)
    r = p @ kernel.ravel() + 0.5 - y.ravel()
    out = np.zeros(12 + 7)
    bundle = LearnPair(x.reshape(17, -1), 2, y.reshape(15, -1), 0, 0, -np.inf, np.inf)
    jit.learn_residuals(bundle, kernel, 0.5, 0.1, True, 4, out)
    np.testing.assert_allclose(out[:12], p.T @ r, rtol=1e-12)
    np.testing.assert_allclose(
        out[12:], [r.sum(), (r * r).sum(), np.abs(r).max(), r.size, 0, (y - 0.1).sum(),
                   ((y - 0.1) ** 2).sum()], rtol=1e-12,
    )  # fmt: skip


def test_the_learn_loops_are_compiled_parallel():
    from convtool import compiled

    jit = compiled.core()

    for fn in (jit.learn_normal_equations, jit.learn_residuals):
        assert fn.targetoptions["parallel"] is True


MEMORY_SCRIPT = """
import numpy as np, sys
from convtool import learn_kernel
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
rng = np.random.default_rng(0)
learn_kernel(rng.random((20, 20), dtype=np.float32), rng.random((20, 20), dtype=np.float32), 7)
learn_kernel(rng.random((20, 20), dtype=np.float32), rng.random((20, 20), dtype=np.float32), 7,
             method="gd", epochs=1)
x = rng.random((N, N), dtype=np.float32)
y = rng.random((N, N), dtype=np.float32)
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')
before = rss('VmRSS:')
learn_kernel(x, y, 7, method=sys.argv[1], **({'epochs': 2} if sys.argv[1] == 'gd' else {}))
print(before, rss('VmHWM:'))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize("method", ["lstsq", "gd"])
def test_memory_stays_near_the_images_size(method):
    """7×7 on 1000×1000: the patch matrix would be 1M × 49 floats (196 MB even in float32);
    the peak resident memory grows by less than the two images (8 MB) plus 24 MB."""
    n = 1000
    code = MEMORY_SCRIPT.replace("N, N", f"{n}, {n}")
    run = subprocess.run(
        [sys.executable, "-c", code, method], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    before, peak = map(int, run.stdout.split())
    assert peak - before < 8 * n * n + 24 * 2**20, (before, peak)


# --- kernel files -------------------------------------------------------------------------


def test_save_kernel_round_trips_through_load_kernel_and_loadtxt(tmp_path):
    x, y = textbook_pair()
    result = learn_kernel(x, y + 0.25, "1x2", bias=True)
    for name in ("k.txt", "k.json", "k"):
        save_kernel(result.kernel, tmp_path / name)
        back = load_kernel(f"@{tmp_path / name}")
        np.testing.assert_array_equal(back.weights, result.weights)
        assert back.bias == result.bias == pytest.approx(0.25)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "k.txt", ndmin=2), result.weights)
    assert json.loads((tmp_path / "k.json").read_text()) == {
        "kernel": result.weights.tolist(),
        "bias": result.bias,
    }
    with pytest.raises(KernelError, match=r"would lose the bias 0\.25.*write \.txt or \.json"):
        save_kernel(result.kernel, tmp_path / "k.npy")
    plain = learn_kernel(x, y, "1x2").kernel
    save_kernel(plain, tmp_path / "k.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "k.npy"), plain.weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "k.json", "k.npy", "k.txt"]


def test_save_kernel_failure_leaves_nothing_behind(tmp_path):
    x, y = textbook_pair()
    kernel = learn_kernel(x, y, "1x2").kernel
    with pytest.raises(KernelError, match=r"directory '.*missing' does not exist"):
        save_kernel(kernel, tmp_path / "missing" / "k.txt")
    (tmp_path / "k.txt").write_text("old")
    save_kernel(kernel, tmp_path / "k.txt")
    assert (tmp_path / "k.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["k.txt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_docstring_examples():
    import doctest

    import convtool.learn.fit

    failures, tried = doctest.testmod(convtool.learn.fit)
    assert (failures, tried > 0) == (0, True)
