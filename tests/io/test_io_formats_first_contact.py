"""First contact with the formats: defaults that lose nothing and look right.

16-bit colour PNG with a plain install, JPEG written as the input was, lossless WebP, grey
``.npy`` as (H, W).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, JpegImagePlugin
from typer.testing import CliRunner

from convtool.choices import DEFAULT_QUALITY
from convtool.cli import app, main

from conftest import CONVERT, imagemagick

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def ok(*args: object) -> None:
    result = runner.invoke(app, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output


def distinct16(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """uint16 samples whose low bytes differ too: what a cut to 8 bits would lose."""
    return np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)


# 16-bit colour PNG ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_16bit_colour_png_needs_no_extra():
    """imagecodecs (Pillow cuts 16-bit colour PNG to 8 bits) comes with a plain install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("imagecodecs") for dep in project["dependencies"])
    assert "codecs" not in project.get("optional-dependencies", {})


@pytest.mark.parametrize("planes", [3, 4])
def test_16bit_colour_png_round_trips_through_the_command_as_opencv_reads_it(tmp_path, planes):
    """A 16-bit RGB(A) PNG written by OpenCV comes back from identity sample for sample, and
    from [[0, 1]] (valid) shifted by one column."""
    stored = distinct16((5, 7, planes), seed=planes)
    bgr = [2, 1, 0, 3][:planes]  # OpenCV's order: BGR, BGRA
    assert cv2.imwrite(str(tmp_path / "in.png"), stored[..., bgr])
    ok(tmp_path / "in.png", "-k", "identity", "-o", tmp_path / "same.png")
    ok(tmp_path / "in.png", "-k", "0 1", "--border", "valid", "-o", tmp_path / "shifted.png")
    same = cv2.imread(str(tmp_path / "same.png"), cv2.IMREAD_UNCHANGED)
    shifted = cv2.imread(str(tmp_path / "shifted.png"), cv2.IMREAD_UNCHANGED)
    assert same.dtype == np.uint16 and shifted.dtype == np.uint16
    np.testing.assert_array_equal(same[..., bgr], stored)
    np.testing.assert_array_equal(shifted[..., bgr], stored[:, 1:])


# JPEG written as the input was ---------------------------------------------------------------


def photo(seed: int = 0, shape: tuple[int, ...] = (48, 64, 3)) -> np.ndarray:
    """Smooth colour gradients with a little noise: something a JPEG encoder works on."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    channels = shape[2] if len(shape) == 3 else 1
    smooth = np.stack([(rows * (2 + c) + cols * (3 - c)) % 200 for c in range(channels)], -1)
    noise = np.random.default_rng(seed).integers(0, 40, shape)
    return (smooth.reshape(shape) + noise).astype(np.uint8)


def jpeg_tables(path: Path) -> tuple[dict[int, list[int]], int]:
    """A JPEG's quantization tables and Pillow's subsampling (0 4:4:4, 1 4:2:2, 2 4:2:0)."""
    with Image.open(path) as im:
        return dict(im.quantization), JpegImagePlugin.get_sampling(im)


def pillow_tables(quality: int, mode: str = "RGB") -> dict[int, list[int]]:
    """The quantization tables Pillow (libjpeg) writes at ``quality``."""
    buffer = io.BytesIO()
    Image.new(mode, (8, 8)).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as im:
        return dict(im.quantization)


@pytest.mark.parametrize(("quality", "subsampling"), [(90, 2), (75, 1), (95, 0), (60, 2)])
def test_jpeg_from_jpeg_keeps_the_inputs_tables_and_subsampling(tmp_path, quality, subsampling):
    """A regression: a sharpened q90 4:2:0 photo came out at q95 4:4:4, 2.9× larger."""
    src = tmp_path / "in.jpg"
    Image.fromarray(photo()).save(src, quality=quality, subsampling=subsampling)
    ok(src, "-k", "sharpen", "-o", tmp_path / "out.jpg")
    tables, sampling = jpeg_tables(tmp_path / "out.jpg")
    assert tables == jpeg_tables(src)[0] == pillow_tables(quality)
    assert sampling == subsampling


def test_jpeg_with_quality_given_uses_that_quality(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(photo()).save(src, quality=90, subsampling=2)
    ok(src, "-k", "sharpen", "--quality", "95", "-o", tmp_path / "q95.jpg")
    ok(src, "-k", "sharpen", "--quality", "80", "-o", tmp_path / "q80.jpg")
    assert jpeg_tables(tmp_path / "q95.jpg") == (pillow_tables(95), 0)  # 4:4:4 at Q ≥ 90
    assert jpeg_tables(tmp_path / "q80.jpg") == (pillow_tables(80), 2)


def test_jpeg_from_another_format_is_written_at_the_default_quality(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    ok(src, "-k", "sharpen", "-o", tmp_path / "out.jpg")
    assert jpeg_tables(tmp_path / "out.jpg") == (pillow_tables(DEFAULT_QUALITY), 0)


def test_grey_jpeg_keeps_its_table(tmp_path):
    src = tmp_path / "grey.jpg"
    Image.fromarray(photo(shape=(40, 56))).save(src, quality=70)
    ok(src, "-k", "box", "-o", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.mode == "L" and dict(im.quantization) == pillow_tables(70, "L")


def test_a_batch_keeps_each_inputs_jpeg_compression(tmp_path):
    """Each file of a batch (read and encoded on threads) keeps its own tables and sampling."""
    made = {"a.jpg": (90, 2), "b.jpg": (70, 1), "c.jpg": (97, 0)}
    for seed, (name, (quality, subsampling)) in enumerate(made.items()):
        Image.fromarray(photo(seed)).save(tmp_path / name, quality=quality, subsampling=subsampling)
    ok(*(tmp_path / name for name in made), "-k", "sharpen", "--out-dir", tmp_path / "out")
    for name, (quality, subsampling) in made.items():
        assert jpeg_tables(tmp_path / "out" / name) == (pillow_tables(quality), subsampling)


@imagemagick
def test_jpeg_quality_and_sampling_as_imagemagick_reads_them(tmp_path):
    """ImageMagick's estimate of the quality and its sampling factors, input against output."""
    src = tmp_path / "in.jpg"
    Image.fromarray(photo()).save(src, quality=90, subsampling=2)
    ok(src, "-k", "sharpen", "-o", tmp_path / "out.jpg")

    def identify(path: Path) -> str:
        args = [CONVERT, str(path), "-format", "%Q %[jpeg:sampling-factor]", "info:"]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    assert identify(tmp_path / "out.jpg") == identify(src) == "90 2x2,1x1,1x1"


def test_jpeg_through_a_pipe_keeps_its_tables(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(photo()).save(src, quality=85, subsampling=1)
    result = runner.invoke(app, ["apply", "-", "-k", "sharpen"], input=src.read_bytes())
    assert result.exit_code == 0, result.output
    (tmp_path / "out.jpg").write_bytes(result.stdout_bytes)
    assert jpeg_tables(tmp_path / "out.jpg") == (pillow_tables(85), 1)


# Lossless WebP -------------------------------------------------------------------------------


def webp_and_png(tmp_path: Path, src: Path, *options: str) -> tuple[np.ndarray, np.ndarray]:
    """What one command writes as WebP and as PNG, decoded."""
    ok(src, "-k", "sharpen", *options, "-o", tmp_path / "out.webp")
    ok(src, "-k", "sharpen", "-o", tmp_path / "out.png")
    with Image.open(tmp_path / "out.webp") as webp, Image.open(tmp_path / "out.png") as png:
        return np.asarray(webp), np.asarray(png)


def test_lossless_webp_is_the_8bit_result_exactly(tmp_path):
    """A regression: even --quality 100 was lossy (levels off by up to 78 on a photo)."""
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    webp, png = webp_and_png(tmp_path, src, "--lossless")
    np.testing.assert_array_equal(webp, png)
    webp, png = webp_and_png(tmp_path, src, "--quality", "100")
    assert not np.array_equal(webp, png)


def test_lossless_webp_keeps_alpha_and_the_colour_under_transparent_pixels(tmp_path):
    rgba = np.concatenate([photo(1), photo(2, (48, 64, 1))], axis=2)
    rgba[::3, ::2, 3] = 0  # transparent pixels, each with its own colour
    src = tmp_path / "in.png"
    Image.fromarray(rgba).save(src)
    webp, png = webp_and_png(tmp_path, src, "--lossless", "--quality", "10")  # fast effort
    np.testing.assert_array_equal(webp, png)


def test_lossless_webp_of_a_grey_image_is_its_grey_in_rgb(tmp_path):
    src = tmp_path / "grey.png"
    Image.fromarray(photo(shape=(40, 56))).save(src)
    webp, png = webp_and_png(tmp_path, src, "--lossless")
    np.testing.assert_array_equal(webp, np.repeat(png[..., np.newaxis], 3, axis=2))


@pytest.mark.parametrize(
    ("output", "advice"),
    [
        ("out.png", "PNG has no lossy mode to turn off: leave --lossless out"),
        ("out.tif", "TIFF has no lossy mode to turn off"),
        ("out.npy", "NPY has no lossy mode to turn off"),
        ("out.jpg", "JPEG has no lossless mode: write .webp, or .png or .tif"),
    ],
)
def test_lossless_is_refused_for_formats_without_the_two_modes(tmp_path, capsys, output, advice):
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    assert main(["apply", str(src), "-k", "box", "--lossless", "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convtool: error: --lossless is WebP's lossless mode, and {advice}")
    assert err.count("\n") == 1 and not (tmp_path / output).exists()


def test_lossless_is_refused_for_an_image_filtered_in_bands(tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.zeros((64, 64)))
    args = ["apply", str(tmp_path / "big.npy"), "-k", "box", "--memory", "16K"]
    assert main([*args, "-o", str(tmp_path / "out.npy")]) == 0
    assert "filtered in bands" in capsys.readouterr().err
    assert main([*args, "--lossless", "-o", str(tmp_path / "lossless.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convtool: error: --lossless is WebP's") and err.count("\n") == 1


# Grey images as (H, W) .npy ------------------------------------------------------------------


def test_a_grey_image_is_written_to_npy_as_h_by_w(tmp_path):
    """A regression: a grey image came out (H, W, 1); as a 2-D matrix, it is (H, W)."""
    grey = photo(shape=(5, 7))
    Image.fromarray(grey).save(tmp_path / "grey.png")
    ok(tmp_path / "grey.png", "-k", "identity", "-o", tmp_path / "grey.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "grey.npy"), grey / np.float32(255))
    Image.fromarray(photo()).save(tmp_path / "rgb.png")
    ok(tmp_path / "rgb.png", "-k", "identity", "--gray", "-o", tmp_path / "luma.npy")
    assert np.load(tmp_path / "luma.npy").shape == (48, 64)


def test_colour_and_alpha_keep_their_planes_in_npy(tmp_path):
    rgb = photo(shape=(5, 7, 3))
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., :2]).convert("LA").save(tmp_path / "la.png")
    ok(tmp_path / "rgb.png", "-k", "identity", "-o", tmp_path / "rgb.npy")
    ok(tmp_path / "la.png", "-k", "identity", "-o", tmp_path / "la.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "rgb.npy"), rgb / np.float32(255))
    assert np.load(tmp_path / "la.npy").shape == (5, 7, 2)  # grey + alpha as the last plane


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_a_matrix_keeps_its_shape_in_npy(tmp_path, shape):
    matrix = np.random.default_rng(0).standard_normal(shape)
    np.save(tmp_path / "m.npy", matrix)
    ok(tmp_path / "m.npy", "-k", "identity", "-o", tmp_path / "out.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), matrix)


def test_a_grey_tiff_filtered_in_bands_is_written_as_h_by_w(tmp_path, capsys):
    grey = np.random.default_rng(1).integers(0, 65536, (128, 96)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    args = [tmp_path / "grey.tif", "-k", "identity", "--memory", "16K", "-o", tmp_path / "grey.npy"]
    assert main(["apply", *map(str, args)]) == 0
    assert "filtered in bands" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "grey.npy"), grey / np.float32(65535))
