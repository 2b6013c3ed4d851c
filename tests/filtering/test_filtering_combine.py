"""``--combine``: the -k kernels side by side on one input, their raw responses combined."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
from PIL import Image
from typer.testing import CliRunner

from convtool.cli import app
from convtool.errors import UsageError
from convtool.filtering.chain import Recipe, filter_planes
from convtool.filtering.combine import combine_responses, correlate_combined
from convtool.kernels.spec import load_kernel

from conftest import distinct_kernel

runner = CliRunner()
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
KIRSCH_RING = [5, 5, 5, -3, -3, -3, -3, -3]  # clockwise from the top-left cell
RING = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]


def ok(*args: object):
    result = runner.invoke(app, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def compass_masks(ring: list[int]) -> list[np.ndarray]:
    """The eight 45° rotations of a compass mask, its outer ring shifted one cell at a time."""
    masks = []
    for shift in range(8):
        m = np.zeros((3, 3))
        for (r, c), v in zip(RING, np.roll(ring, shift), strict=True):
            m[r, c] = v
        masks.append(m)
    return masks


def test_gradient_magnitude_equals_hypot_of_scipy(tmp_path):
    """``-k sobel-x -k sobel-y --combine magnitude`` is np.hypot of the two scipy results."""
    x = np.random.default_rng(0).random((23, 31))
    np.save(tmp_path / "x.npy", x)
    ok(tmp_path / "x.npy", "-k", "sobel-x", "-k", "sobel-y", "--combine", "magnitude",
       "-o", tmp_path / "m.npy")  # fmt: skip
    want = np.hypot(ndi.correlate(x, SOBEL_X), ndi.correlate(x, SOBEL_X.T))
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), want, rtol=0, atol=1e-12)


def test_kirsch_is_the_max_of_eight_compass_rotations(tmp_path):
    """ImageMagick's Kirsch:0..315 with ``max`` against the ring-rotated masks through scipy."""
    x = np.random.default_rng(1).random((19, 24))
    np.save(tmp_path / "x.npy", x)
    specs = [a for angle in range(0, 360, 45) for a in ("-k", f"Kirsch:{angle}")]
    ok(tmp_path / "x.npy", *specs, "--combine", "max", "--border", "nearest",
       "-o", tmp_path / "k.npy")  # fmt: skip
    want = np.max([ndi.correlate(x, m, mode="nearest") for m in compass_masks(KIRSCH_RING)], 0)
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("mode", "reduce"),
    [
        ("magnitude", lambda r: np.sqrt(np.sum(np.square(r), 0))),
        ("sum", lambda r: np.sum(r, 0)),
        ("max", lambda r: np.max(r, 0)),
        ("min", lambda r: np.min(r, 0)),
        ("maxabs", lambda r: np.take_along_axis(r, np.abs(r).argmax(0)[None], 0)[0]),
    ],
)
@pytest.mark.parametrize("border", ["reflect", "wrap", "constant", "valid"])
def test_every_mode_on_kernels_of_different_sizes(mode, reduce, border):
    """Kernels 3×3, 2×4 and 1×5 side by side: each response is scipy's, on one grid."""
    x = np.random.default_rng(2).standard_normal((9, 12, 2))
    kernels = [distinct_kernel(3, 3, 1), distinct_kernel(2, 4, 2), distinct_kernel(1, 5, 3)]
    got = correlate_combined(x, kernels, mode, border=border if border != "valid" else "valid")
    if border == "valid":  # the pixels every kernel covers whole: the grid's valid area (3×5)
        padded = [np.pad(kernels[0], ((0, 0), (1, 1))), np.pad(kernels[1], ((0, 1), (0, 1))),
                  np.pad(kernels[2], ((1, 1), (0, 0)))]  # fmt: skip
        want = reduce(np.array([_scipy_valid(x, k) for k in padded]))
    else:
        want = reduce(np.array([_scipy(x, k, border) for k in kernels]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def _scipy(x, k, border):
    return np.stack([ndi.correlate(x[..., c], k, mode=border) for c in range(x.shape[2])], 2)


def _scipy_valid(x, k):
    kh, kw = k.shape
    full = _scipy(x, k, "reflect")
    return full[
        kh // 2 : x.shape[0] - (kh - 1 - kh // 2), kw // 2 : x.shape[1] - (kw - 1 - kw // 2)
    ]


def test_maxabs_keeps_the_sign():
    out = combine_responses([np.array([[1.0, -5.0]]), np.array([[-3.0, 2.0]])], "maxabs")
    np.testing.assert_array_equal(out, [[-3.0, -5.0]])


def test_convolve_and_origin_apply_to_every_branch():
    x = np.random.default_rng(3).random((8, 9))
    k1, k2 = distinct_kernel(2, 3, 4), distinct_kernel(3, 2, 5)
    got = correlate_combined(x, [k1, k2], "sum", convolve=True, origin=(0, -1))
    want = ndi.convolve(x, k1, origin=(0, -1)) + ndi.convolve(x, k2, origin=(0, -1))
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_without_combine_the_kernels_chain():
    recipe = Recipe((load_kernel("sobel-x"), load_kernel("sobel-y")))
    x = np.random.default_rng(4).random((7, 8)).astype(np.float32)
    out, _ = filter_planes(x, None, recipe)
    np.testing.assert_allclose(out, ndi.correlate(ndi.correlate(x, SOBEL_X), SOBEL_X.T), atol=1e-5)


def test_scale_bias_come_after_combining_and_kernel_bias_before():
    recipe = Recipe(
        (load_kernel('{"kernel": [[1]], "bias": -0.5}'), load_kernel("identity")),
        combine="max", scale=2.0, bias=0.25,
    )  # fmt: skip
    x = np.array([[0.2, 0.9]], np.float32)
    out, _ = filter_planes(x, None, recipe)
    np.testing.assert_allclose(out, 2 * np.maximum(x - 0.5, x) + 0.25)


@pytest.mark.parametrize("alpha_mode", ["auto", "filter"])
def test_opaque_alpha_and_premultiplied_alpha(alpha_mode):
    """An opaque image combines as without alpha; a transparent pixel's colour never leaks."""
    x = np.random.default_rng(5).random((6, 7, 3)).astype(np.float32)
    recipe = Recipe(
        (load_kernel("sobel-x"), load_kernel("sobel-y")), combine="magnitude", alpha=alpha_mode
    )
    plain, _ = filter_planes(x, None, recipe)
    opaque, alpha = filter_planes(x, np.ones((6, 7), np.float32), recipe)
    np.testing.assert_array_equal(opaque, plain)
    # auto: alpha is coverage (1); filter: alpha ⋆ K, 0 for a derivative of a constant alpha
    assert alpha is not None and np.all(alpha == (1 if alpha_mode == "auto" else 0))
    blur = Recipe(
        (load_kernel("box:3"), load_kernel("gaussian:sigma=1,size=3")),
        combine="max",
        alpha=alpha_mode,
    )
    a = np.ones((6, 7), np.float32)
    a[:, :3] = 0
    hidden = x.copy()
    hidden[:, :3] = 1000.0  # colour under transparent pixels
    c1, a1 = filter_planes(x, a, blur)
    c2, a2 = filter_planes(hidden, a, blur)
    np.testing.assert_allclose(c1, c2, atol=1e-5)
    np.testing.assert_array_equal(a1, a2)


def test_combine_in_a_batch_and_in_bands(tmp_path):
    """A batch writes each file as alone; a TIFF filtered in bands equals the in-memory one."""
    rng = np.random.default_rng(6)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)).save(
            tmp_path / f"{name}.png"
        )
    ok(tmp_path / "a.png", tmp_path / "b.png", "-k", "sobel-x", "-k", "sobel-y",
       "--combine", "magnitude", "--out-dir", tmp_path / "out")  # fmt: skip
    ok(tmp_path / "a.png", "-k", "sobel-x", "-k", "sobel-y", "--combine", "magnitude",
       "-o", tmp_path / "alone.png")  # fmt: skip
    a = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    np.testing.assert_array_equal(a, np.asarray(Image.open(tmp_path / "alone.png")))
    big = rng.random((300, 200)).astype(np.float32)
    tifffile.imwrite(tmp_path / "big.tif", big)
    options = ["-k", "sobel-x", "-k", "prewitt-y", "-k", "box:5", "--combine", "maxabs",
               "--border", "wrap"]  # fmt: skip
    ok(tmp_path / "big.tif", *options, "-o", tmp_path / "whole.tif")
    banded = ok(tmp_path / "big.tif", *options, "-o", tmp_path / "bands.tif", "--memory", "200K")
    assert "filtered in bands of" in banded.stderr
    np.testing.assert_allclose(
        tifffile.imread(tmp_path / "bands.tif"), tifffile.imread(tmp_path / "whole.tif"), atol=1e-6
    )


def test_combine_in_bands_with_alpha(tmp_path):
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 65536, (260, 90, 4)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", rgba, photometric="rgb", extrasamples=[2])
    options = ["-k", "box:3", "-k", "sobel-x", "--combine", "max"]
    ok(tmp_path / "in.tif", *options, "-o", tmp_path / "whole.tif")
    banded = ok(tmp_path / "in.tif", *options, "-o", tmp_path / "bands.tif", "--memory", "150K")
    assert "filtered in bands of" in banded.stderr
    a = tifffile.imread(tmp_path / "whole.tif").astype(int)
    b = tifffile.imread(tmp_path / "bands.tif").astype(int)
    assert np.abs(a - b).max() <= 1


def test_unknown_mode_is_refused():
    with pytest.raises(UsageError, match="choose one of magnitude"):
        correlate_combined(np.ones((3, 3)), [[[1.0]]], "hypot")
