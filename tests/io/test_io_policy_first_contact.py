"""First contact with the pixel policy: defaults that lose nothing and look right.

Float data keeps its values in float outputs; clipping more than 1 % of a result is never
silent; a transparent image's hidden colour never bleeds into a blur.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from convtool.cli import app
from convtool.filtering.chain import Recipe, filter_planes
from convtool.filtering.clipping import filter_for_output
from convtool.filtering.fused import fused_kernel
from convtool.io.picture import Picture
from convtool.io.plan import plan_output
from convtool.kernels.spec import load_kernel
from convtool.kernels.value import Kernel

from conftest import CONVERT, imagemagick

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
CAMERA = SAMPLES / "camera.png"


def apply(*args: object):
    result = runner.invoke(app, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("convtool: note:")]


def clipping_notes(result) -> list[str]:
    return [line for line in notes(result) if "written clipped" in line]


def counted(note: str) -> tuple[int, int, int]:
    """(below 0, above 1, all samples) as a clipping note states them."""
    total = int(re.search(r" of (\d+) samples", note)[1])
    below, above = (re.search(rf"(\d+) {side}", note) for side in ("below 0", "above 1"))
    return (int(below[1]) if below else 0), (int(above[1]) if above else 0), total


def levels_out_of_range(values: np.ndarray, top: int = 255) -> tuple[int, int]:
    """numpy's own count on a float result: levels below 0 and above ``top`` once rounded."""
    levels = np.rint(values * top)
    return int((levels < 0).sum()), int((levels > top).sum())


def camera() -> np.ndarray:
    with Image.open(CAMERA) as im:
        return np.asarray(im, dtype=np.float64) / 255


# 1. Float data keeps its values ---------------------------------------------------------------

WIDE = np.linspace(-200, 800, 12 * 16, dtype=np.float32).reshape(12, 16)


def test_float_tiff_keeps_values_beyond_0_1_in_a_float_output(tmp_path):
    """f32.tif holding −200…800 through identity: the same values, not 0…1, and no note."""
    tifffile.imwrite(tmp_path / "f32.tif", WIDE)
    result = apply(tmp_path / "f32.tif", "-k", "identity", "-o", tmp_path / "same.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "same.tif"), WIDE)
    apply(tmp_path / "f32.tif", "-k", "identity", "-o", tmp_path / "same.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "same.npy").reshape(WIDE.shape), WIDE)
    assert clipping_notes(result) == []


def test_depth_32_keeps_signed_responses_of_an_8bit_input(tmp_path):
    """An 8-bit PNG's Sobel into --depth 32: the negative half is kept (no --map none needed)."""
    apply(CAMERA, "-k", "sobel-x", "--depth", "32", "-o", tmp_path / "g.tif")
    expected = ndimage.correlate(camera(), load_kernel("sobel-x").weights, mode="reflect")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "g.tif"), expected, atol=1e-5)


def test_float_into_an_integer_format_maps_as_before_with_a_note(tmp_path):
    """Float −200…800 into PNG: 16-bit, clipped to [0, 1] as before, and one note says so."""
    tifffile.imwrite(tmp_path / "f32.tif", WIDE)
    result = apply(tmp_path / "f32.tif", "-k", "identity", "-o", tmp_path / "x.png")
    written = np.asarray(Image.open(tmp_path / "x.png"))
    np.testing.assert_array_equal(written, np.rint(np.clip(WIDE, 0, 1) * 65535))
    (note,) = clipping_notes(result)
    assert counted(note) == (*levels_out_of_range(WIDE, 65535), WIDE.size)
    assert "the input holds -200 to 800" in note
    assert "a float output (.tif with --depth 32, or .npy)" in note


def test_float_input_slightly_out_of_range_is_noted_below_1_percent(tmp_path):
    """A float input beyond [0, 1] is data: even one clipped sample is noted."""
    x = np.full((20, 20), 0.5, np.float32)
    x[3, 4] = 1.5
    tifffile.imwrite(tmp_path / "f.tif", x)
    (note,) = clipping_notes(apply(tmp_path / "f.tif", "-k", "identity", "-o", tmp_path / "x.png"))
    assert counted(note) == (0, 1, 400)


def test_an_asked_map_clips_without_a_note(tmp_path):
    """--map clip is the way to say clipping is meant: the same samples, no note."""
    tifffile.imwrite(tmp_path / "f32.tif", WIDE)
    result = apply(
        tmp_path / "f32.tif", "-k", "identity", "--map", "clip", "-o", tmp_path / "c.tif"
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), np.clip(WIDE, 0, 1))
    assert clipping_notes(result) == []
    assert (
        clipping_notes(apply(CAMERA, "-k", "edge", "--map", "clip", "-o", tmp_path / "e.png")) == []
    )


def test_float_tiff_in_bands_keeps_values_and_notes_as_in_memory(tmp_path):
    """The streamed path: the same kept values, and the same note for an integer output."""
    big = np.linspace(-3, 4, 200 * 60, dtype=np.float32).reshape(200, 60)
    tifffile.imwrite(tmp_path / "big.tif", big, rowsperstrip=16)
    streamed = apply(tmp_path / "big.tif", "-k", "identity", "--memory", "100K",
                     "-o", tmp_path / "same.tif")  # fmt: skip
    assert "filtered in bands" in streamed.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "same.tif"), big)
    found = []
    for memory in ([], ["--memory", "100K"]):
        result = apply(tmp_path / "big.tif", "-k", "identity", "--depth", "16", *memory,
                       "-o", tmp_path / "x16.tif")  # fmt: skip
        found.append(clipping_notes(result))
    assert found[0] == found[1] and len(found[0]) == 1
    assert counted(found[0][0]) == (*levels_out_of_range(big, 65535), big.size)


# 2. Clipping is never silent ------------------------------------------------------------------


def test_unnormalized_blur_turning_the_camera_white_is_noted_with_the_exact_count(tmp_path):
    k = "1 2 1; 2 4 2; 1 2 1"
    (note,) = clipping_notes(apply(CAMERA, "-k", k, "-o", tmp_path / "b.png"))
    values = ndimage.correlate(camera(), load_kernel(k).weights, mode="reflect")
    assert counted(note) == (*levels_out_of_range(values), values.size)
    assert counted(note)[1] > 0.9 * values.size  # 94 % white
    assert "--normalize (the kernel sums to 16)" in note and "--map rescale" in note
    assert "--map abs" not in note  # nothing below 0


def test_edge_into_png_notes_the_lost_negative_responses(tmp_path):
    (note,) = clipping_notes(apply(CAMERA, "-k", "edge", "-o", tmp_path / "e.png"))
    values = ndimage.correlate(camera(), load_kernel("edge").weights, mode="reflect")
    assert counted(note) == (*levels_out_of_range(values), values.size)
    assert "--map abs (their magnitude)" in note and "--normalize" not in note


@pytest.mark.parametrize("kernel", ["sobel-x", "laplacian", "sharpen", "3 -1; 0 -1", "box:3"])
@pytest.mark.parametrize("border", ["reflect", "constant", "valid"])
@pytest.mark.parametrize(("dtype", "fmt"), [(np.uint8, "PNG"), (np.uint16, "TIFF")])
def test_counts_are_exact_on_the_fused_and_float_paths(kernel, border, dtype, fmt):
    """The note's count is numpy's on the float result, whichever path filtered (integer
    kernels are fused, box:3 is not)."""
    top = int(np.iinfo(dtype).max)
    samples = np.random.default_rng(5).integers(0, top + 1, (23, 31, 3)).astype(dtype)
    picture = Picture(data=samples, integer_stored=True, depth=top.bit_length(), colors="RGB")
    k = load_kernel(kernel)
    recipe = Recipe((k,), border=border, cval=1.0)
    plan = plan_output(picture, fmt)
    assert (fused_kernel(picture, recipe, plan) is None) == (kernel == "box:3")
    mode = border if border != "valid" else "reflect"
    values = ndimage.correlate(samples / top, k.weights[..., np.newaxis], mode=mode, cval=1.0)
    if border == "valid":
        (kh, kw), (h, w) = k.shape, samples.shape[:2]
        values = values[kh // 2 : kh // 2 + h - kh + 1, kw // 2 : kw // 2 + w - kw + 1]
    _, noted = filter_for_output(picture, recipe, plan)
    below, above = levels_out_of_range(values, top)
    if below + above > values.size / 100:
        (note,) = noted.notes
        assert counted(note) == (below, above, values.size)
    else:
        assert noted.notes == ()


def test_within_1_percent_is_quiet_and_beyond_it_noted(tmp_path):
    """100 of 10 000 samples pushed past white is 1 %: no note; 101 is more: a note."""
    for pushed, noted in ((100, False), (101, True)):
        x = np.full((100, 100), 128, np.uint8)
        x.flat[:pushed] = 255
        Image.fromarray(x).save(tmp_path / "x.png")
        for float_path in ([], ["--border", "constant", "--cval", "0.5"]):  # 127.5: not fused
            result = apply(tmp_path / "x.png", "-k", "identity", "--bias", str(1 / 255),
                           *float_path, "-o", tmp_path / "y.png")  # fmt: skip
            found = clipping_notes(result)
            assert (found != []) == noted, (pushed, float_path, found)
            if noted:
                assert counted(found[0]) == (0, pushed, 10_000)
    blurred = apply(CAMERA, "-k", "gaussian:2", "-o", tmp_path / "g.png")
    assert clipping_notes(blurred) == []


def test_a_batch_notes_each_file_that_clips(tmp_path):
    dark = np.full((10, 10), 10, np.uint8)
    Image.fromarray(dark).save(tmp_path / "dark.png")
    Image.open(CAMERA).save(tmp_path / "cam.png")
    result = apply(tmp_path / "dark.png", tmp_path / "cam.png", "-k", "1 2 1; 2 4 2; 1 2 1",
                   "--out-dir", tmp_path / "out")  # fmt: skip
    (note,) = clipping_notes(result)
    assert note.startswith(f"convtool: note: {tmp_path / 'cam.png'}: ")


# 3. Transparent images: no hidden colour, alpha filtered with it --------------------------------


def logo(shape=(48, 64)) -> np.ndarray:
    """RGBA 8-bit: a disc with an anti-aliased edge, red to blue, a half-transparent stripe
    across it, and a fully transparent surround that holds green."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    alpha = np.clip(16 - np.hypot(x - 30.3, y - 22.7), 0, 1)
    alpha[20:24] *= 0.5
    rgba = np.zeros((h, w, 4))
    rgba[..., 0], rgba[..., 2] = x / w, 1 - x / w
    rgba[alpha == 0, :3] = [0, 1, 0]
    rgba[..., 3] = alpha
    return np.rint(rgba * 255).astype(np.uint8)


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """RGBA samples as (α·R, α·G, α·B, α) in levels: what a picture looks like composited."""
    a = rgba.astype(np.float64)
    return np.concatenate([a[..., :3] * a[..., 3:] / 255, a[..., 3:]], axis=2)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA") if im.mode != "RGBA" else im)


def test_blur_of_a_logo_shows_no_hidden_green_and_a_soft_alpha_edge(tmp_path):
    Image.fromarray(logo()).save(tmp_path / "logo.png")
    apply(tmp_path / "logo.png", "-k", "gaussian:4", "-o", tmp_path / "auto.png")
    auto = pixels(tmp_path / "auto.png")
    visible = auto[..., 3] > 0
    assert auto[visible, 1].max() == 0  # no green wherever anything shows
    assert 0 < auto[0, 40, 3] < 255 and len(np.unique(auto[..., 3])) > 100  # alpha blurred
    apply(tmp_path / "logo.png", "-k", "gaussian:4", "--alpha", "keep", "-o", tmp_path / "k.png")
    kept = pixels(tmp_path / "k.png")
    assert kept[kept[..., 3] > 0, 1].max() > 100  # the green halo of the old default
    np.testing.assert_array_equal(kept[..., 3], logo()[..., 3])  # and its hard alpha edge


@imagemagick
def test_blur_is_imagemagicks_blur(tmp_path):
    """``-k gaussian:4`` is ``convert -blur 0x4`` within 2 levels, composited, borders too."""
    Image.fromarray(logo()).save(tmp_path / "logo.png")
    apply(
        tmp_path / "logo.png", "-k", "gaussian:4", "--border", "nearest", "-o", tmp_path / "c.png"
    )
    subprocess.run([CONVERT, tmp_path / "logo.png", "-virtual-pixel", "edge", "-blur", "0x4",
                    f"PNG32:{tmp_path / 'm.png'}"], check=True)  # fmt: skip
    diff = np.abs(
        premultiplied(pixels(tmp_path / "c.png")) - premultiplied(pixels(tmp_path / "m.png"))
    )
    assert diff.max() <= 2, diff.max(axis=(0, 1))


@imagemagick
def test_sharpen_is_imagemagicks_morphology_convolve(tmp_path):
    """A kernel with negative weights that sums to 1: ImageMagick's alpha-weighted
    ``-morphology Correlate`` (colour Σ αKC / Σ αK, alpha α ⋆ K) within a level."""
    Image.fromarray(logo()).save(tmp_path / "logo.png")
    apply(tmp_path / "logo.png", "-k", "sharpen", "--border", "nearest", "-o", tmp_path / "c.png")
    subprocess.run([CONVERT, tmp_path / "logo.png", "-virtual-pixel", "edge", "-morphology",
                    "Correlate", "3x3: 0,-1,0 -1,5,-1 0,-1,0", f"PNG32:{tmp_path / 'm.png'}"],
                   check=True)  # fmt: skip
    diff = np.abs(
        premultiplied(pixels(tmp_path / "c.png")) - premultiplied(pixels(tmp_path / "m.png"))
    )
    assert diff.max() <= 1, diff.max(axis=(0, 1))


@imagemagick
def test_sobel_of_a_logo_is_visible_and_is_the_sobel_of_the_composited_logo(tmp_path):
    """A zero-sum kernel: the colour is the derivative of the premultiplied colour, alpha the
    opaque share of the kernel's footprint. Composited, that is ImageMagick's Sobel of the
    logo flattened on black (within 2 levels; ``--scale 1/8`` keeps it within [−1, 1]).
    ImageMagick's own -morphology on the RGBA logo turns the transparent surround opaque."""
    Image.fromarray(logo()).save(tmp_path / "logo.png")
    sobel = ["-k", "sobel-x", "--scale", "0.125", "--border", "nearest"]
    apply(tmp_path / "logo.png", *sobel, "-o", tmp_path / "c.png")
    ours = pixels(tmp_path / "c.png")
    correlate = ["-virtual-pixel", "edge", "-define", "convolve:scale=0.125", "-morphology",
                 "Correlate", "3x3: -1,0,1 -2,0,2 -1,0,1"]  # fmt: skip
    flatten = ["-background", "black", "-alpha", "remove", "-alpha", "off"]
    subprocess.run([CONVERT, tmp_path / "logo.png", *flatten, *correlate,
                    f"PNG24:{tmp_path / 'flat.png'}"], check=True)  # fmt: skip
    diff = np.abs(premultiplied(ours)[..., :3] - pixels(tmp_path / "flat.png")[..., :3])
    assert diff.max() <= 2, diff.max(axis=(0, 1))
    outline = (ours[..., 0] > 30) & (ours[..., 3] > 64)
    assert outline.sum() > 40  # the outline shows
    assert ours[0, 0, 3] == 0  # the surround stays transparent
    subprocess.run([CONVERT, tmp_path / "logo.png", *correlate, f"PNG32:{tmp_path / 'm.png'}"],
                   check=True)  # fmt: skip
    assert pixels(tmp_path / "m.png")[0, 0, 3] == 255


def test_an_opaque_alpha_channel_filters_as_without_alpha(tmp_path):
    """auto on an opaque RGBA image: the colour of keep, alpha stays opaque (and fused)."""
    rgba = np.random.default_rng(2).integers(0, 256, (20, 30, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    picture = Picture(data=rgba[..., :3], alpha=rgba[..., 3], integer_stored=True,
                      colors="RGB")  # fmt: skip
    recipe = Recipe((load_kernel("sobel-x"),))
    assert fused_kernel(picture, recipe, plan_output(picture, "PNG")) is not None
    Image.fromarray(rgba).save(tmp_path / "o.png")
    apply(tmp_path / "o.png", "-k", "sobel-x", "-o", tmp_path / "auto.png")
    apply(tmp_path / "o.png", "-k", "sobel-x", "--alpha", "keep", "-o", tmp_path / "keep.png")
    np.testing.assert_array_equal(pixels(tmp_path / "auto.png"), pixels(tmp_path / "keep.png"))


def test_auto_alpha_is_each_kernels_coverage():
    """Alpha filtered with K/ΣK (gain-free), or |K|/Σ|K| for a zero-sum K; colour P / A."""
    colour = np.array([[[0.2], [0.4], [0.6], [0.8]]], np.float32)
    alpha = np.array([[1.0, 1.0, 0.5, 0.0]], np.float32)
    blur16 = Kernel(np.array([[4.0, 8, 4]]))  # sums to 16: the gain stays in the colour
    out, out_alpha = filter_planes(colour, alpha, Recipe((blur16,), border="nearest"))
    a = ndimage.correlate(alpha, blur16.weights / 16, mode="nearest")
    p = ndimage.correlate(colour[..., 0] * alpha, blur16.weights, mode="nearest")
    np.testing.assert_allclose(out_alpha, a, rtol=1e-6)
    np.testing.assert_allclose(
        out[..., 0], np.where(a > 0, p / np.where(a > 0, a, 1), 0), rtol=1e-6
    )
    edge = load_kernel("1 0 -1")  # zero-sum: alpha from |K| / Σ|K|
    out, out_alpha = filter_planes(colour, alpha, Recipe((edge,), border="nearest"))
    a = ndimage.correlate(alpha, [[0.5, 0, 0.5]], mode="nearest")
    np.testing.assert_allclose(out_alpha, a, rtol=1e-6)
    p = ndimage.correlate(colour[..., 0] * alpha, edge.weights, mode="nearest")
    np.testing.assert_allclose(out[..., 0], p / a, rtol=1e-6)
