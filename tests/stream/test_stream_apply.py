"""``convtool apply`` on images filtered in bands: the same files as the in-memory path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
from PIL import Image
from typer.testing import CliRunner

import convtool
import convtool.io.tiff
import convtool.stream.probe
from convtool.cli import app

runner = CliRunner()


def apply(*args: object):
    return runner.invoke(app, ["apply", *map(str, args)])


def ok(*args: object):
    result = apply(*args)
    assert result.exit_code == 0, result.output
    return result


def image(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    top = np.iinfo(dtype).max
    # a smooth picture with noise, so blurs and edges give varied values
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = (np.sin(x / 7.0) * np.cos(y / 5.0) + 1) / 2
    if len(shape) == 3:
        base = base[..., np.newaxis] * np.linspace(0.5, 1, shape[2])
    noisy = base * 0.8 + rng.random(shape) * 0.2
    return np.round(noisy * top).astype(dtype)


def same_as_in_memory(tmp_path, src, *options, suffix=".tif", memory="300K", exact_float=1e-6):
    """Run once in memory and once in bands; the stored files agree within one level.

    ``memory`` must be below what the in-memory run needs (4 float32 copies of the image).
    """
    whole = tmp_path / f"whole{suffix}"
    bands = tmp_path / f"bands{suffix}"
    ok(src, *options, "-o", whole)
    result = ok(src, *options, "-o", bands, "--memory", memory)
    assert "filtered in bands of" in result.stderr
    read = np.load if suffix == ".npy" else tifffile.imread
    a, b = read(whole), read(bands)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype.kind == "f":
        np.testing.assert_allclose(b, a, rtol=0, atol=exact_float)
    else:
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    return b


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant", "valid"])
def test_rgb_tiff_every_border(tmp_path, border):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((160, 120, 3), np.uint8), photometric="rgb", tile=(32, 32),
                     compression="zlib")  # fmt: skip
    same_as_in_memory(tmp_path, src, "-k", "sobel-x", "--map", "abs", "--border", border,
                      "--cval", "0.25")  # fmt: skip


def test_jpeg_compressed_tiff_in_bands(tmp_path):
    """JPEG-in-TIFF (YCbCr, decoded to RGB by the JPEG decoder) streams as it reads whole."""
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((160, 120, 3), np.uint8), photometric="rgb", tile=(32, 32),
                     compression="jpeg")  # fmt: skip
    filtered = same_as_in_memory(tmp_path, src, "-k", "emboss", "--border", "mirror")
    expected = np.clip(
        np.stack(
            [
                ndi.correlate(plane, convtool.parse_kernel("emboss"), mode="mirror")
                for plane in np.moveaxis(tifffile.imread(src).astype(np.float64), 2, 0)
            ],
            axis=2,
        ),
        0,
        255,
    )
    assert np.abs(filtered.astype(float) - expected).max() <= 0.5 + 1e-9


@pytest.mark.parametrize(
    "options",
    [
        ("-k", "gaussian:2", "-k", "laplacian", "--map", "rescale"),
        ("-k", "emboss", "--bias", "0.5", "--scale", "0.7"),
        ("-k", "box:4", "--gray", "--border", "valid"),
        ("-k", "sobel-y", "--map", "none", "--depth", "32"),
        ("-k", "motion:length=9,angle=30", "--convolve", "--normalize", "--depth", "16"),
    ],
)
def test_options_through_bands(tmp_path, options):
    """Chains, rescale (two passes), scale/bias, gray, depths: as in memory."""
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((130, 90, 3), np.uint16, seed=1), photometric="rgb",
                     rowsperstrip=7)  # fmt: skip
    same_as_in_memory(tmp_path, src, *options)


def test_float_tiff_stays_float(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((200, 60), np.float32, seed=2), compression="zlib", rowsperstrip=16)
    out = same_as_in_memory(tmp_path, src, "-k", "log:sigma=1.5", "--map", "none",
                            memory="100K")  # fmt: skip
    assert out.dtype == np.float32


def test_alpha_is_kept_and_cropped(tmp_path):
    """--alpha keep: the colour is filtered, alpha kept (and cropped with valid), as in memory."""
    src = tmp_path / "in.tif"
    data = image((60, 45, 4), np.uint8, seed=3)
    tifffile.imwrite(src, data, photometric="rgb", extrasamples=["unassalpha"])
    keep = ["--alpha", "keep"]
    same_as_in_memory(tmp_path, src, "-k", "box:3", "--border", "valid", *keep, memory="100K")
    same_as_in_memory(tmp_path, src, "-k", "sharpen", *keep, memory="100K")


@pytest.mark.parametrize("border", ["reflect", "constant", "valid", "wrap"])
def test_alpha_auto_in_bands(tmp_path, border):
    """The default --alpha auto: colour premultiplied, alpha filtered as each kernel's coverage
    (K / ΣK, or |K| / Σ|K| for sobel-x) band by band; an opaque image as without alpha."""
    src = tmp_path / "in.tif"
    data = image((60, 45, 4), np.uint8, seed=8)
    data[10:30, 5:20, 3] = 0  # a transparent hole
    tifffile.imwrite(src, data, photometric="rgb", extrasamples=["unassalpha"])
    same_as_in_memory(tmp_path, src, "-k", "box:3", "-k", "sobel-x", "--border", border,
                      "--cval", "0.5", memory="100K")  # fmt: skip
    data[..., 3] = 255
    tifffile.imwrite(src, data, photometric="rgb", extrasamples=["unassalpha"])
    same_as_in_memory(tmp_path, src, "-k", "sharpen", "--border", border, memory="100K")


@pytest.mark.parametrize("border", ["reflect", "constant", "valid", "wrap"])
def test_alpha_filter_in_bands(tmp_path, border):
    """--alpha filter: colour premultiplied, coverage and alpha filtered band by band."""
    src = tmp_path / "in.tif"
    data = image((60, 45, 4), np.uint8, seed=7)
    data[10:30, 5:20, 3] = 0  # a transparent hole
    tifffile.imwrite(src, data, photometric="rgb", extrasamples=["unassalpha"])
    same_as_in_memory(tmp_path, src, "-k", "box:3", "-k", "sobel-x", "--alpha", "filter",
                      "--border", border, "--cval", "0.5", memory="100K")  # fmt: skip


def test_npy_matrix_in_bands(tmp_path):
    """A .npy matrix: raw numbers in, raw numbers out, float64 within 1e-12."""
    x = np.random.default_rng(4).standard_normal((90, 70)) * 100
    np.save(tmp_path / "m.npy", x)
    out = same_as_in_memory(tmp_path, tmp_path / "m.npy", "-k", "0 1 2; 3 4 5",
                            "--border", "wrap", suffix=".npy", memory="60K",
                            exact_float=1e-12)  # fmt: skip
    assert out.dtype == np.float64


@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<i2"])
def test_fortran_order_npy_over_max_pixels_streams(tmp_path, dtype):
    """A Fortran-order .npy (e.g. numpy.save of x.T) above --max-pixels is streamed, not refused
    with a hint to raise the limit; the result is scipy.ndimage's, stored in C order."""
    x = np.random.default_rng(7).standard_normal((45, 31, 2)) * 300
    x = np.asfortranarray(x.astype(dtype))
    np.save(tmp_path / "f.npy", x)
    result = ok(tmp_path / "f.npy", "-k", "1 2; 4 -8", "--border", "nearest",
                "--max-pixels", "500", "-o", tmp_path / "o.npy")  # fmt: skip
    assert "filtered in bands of" in result.stderr
    k = np.array([[1.0, 2.0], [4.0, -8.0]])
    expected = np.stack(
        [ndi.correlate(x[..., c].astype(np.float64), k, mode="nearest") for c in range(2)], -1
    )
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, rtol=0, atol=1e-9)


def test_tiff_to_npy_and_npy_to_tiff(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((50, 40, 3), np.uint8, seed=5), photometric="rgb")
    same_as_in_memory(tmp_path, src, "-k", "box:3", suffix=".npy", memory="60K")
    np.save(tmp_path / "m.npy", np.random.default_rng(6).random((50, 40, 3)))
    same_as_in_memory(tmp_path, tmp_path / "m.npy", "-k", "box:3", memory="60K")


def test_large_output_is_bigtiff_and_tiled(tmp_path, monkeypatch):
    """Past the BigTIFF threshold the output is BigTIFF (threshold lowered for the test), tiled
    when compressed."""
    monkeypatch.setattr(convtool.io.tiff, "BIGTIFF_THRESHOLD", 1000)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((64, 64, 3), np.uint8), photometric="rgb")
    ok(src, "-k", "box", "--memory", "100K", "--compress-level", "4", "-o", tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.is_bigtiff and tif.pages.first.is_tiled


def test_streams_automatically_when_memory_is_short(tmp_path, monkeypatch):
    """Without --memory, an input needing more than half the available memory streams."""
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((80, 60, 3), np.uint8), photometric="rgb")
    ok(src, "-k", "box", "-o", tmp_path / "whole.tif")
    monkeypatch.setattr(convtool.stream.probe, "available_memory", lambda: 200_000)
    result = ok(src, "-k", "box", "-o", tmp_path / "bands.tif")
    assert "filtered in bands of" in result.stderr
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "bands.tif"), tifffile.imread(tmp_path / "whole.tif")
    )


def test_npy_estimate_counts_float64_copies(tmp_path, monkeypatch):
    """A .npy is filtered in float64: its in-memory run needs twice a float32 image's memory
    (4 copies of 8 bytes), so it streams where 4 float32 copies would still have fit."""
    x = np.random.default_rng(8).random((100, 100))
    np.save(tmp_path / "m.npy", x)
    monkeypatch.setattr(convtool.stream.probe, "available_memory", lambda: 2 * 200_000)
    assert convtool.stream.probe.probe(str(tmp_path / "m.npy")).in_memory_bytes == 320_000
    result = ok(tmp_path / "m.npy", "-k", "box:3", "-o", tmp_path / "o.npy")
    assert "filtered in bands of" in result.stderr
    expected = ndi.correlate(x, np.full((3, 3), 1 / 9), mode="reflect")
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), expected, rtol=0, atol=1e-12)


def test_tiff_over_max_pixels_streams_instead_of_being_refused(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((40, 30), np.uint8), photometric="minisblack")
    result = ok(src, "-k", "box", "--max-pixels", "1000", "-o", tmp_path / "o.tif")
    assert "filtered in bands of" in result.stderr


def test_png_that_would_not_fit_suggests_tiff(tmp_path):
    Image.fromarray(image((40, 40, 3), np.uint8)).save(tmp_path / "in.png")
    result = apply(tmp_path / "in.png", "-k", "box", "--memory", "10K", "-o", tmp_path / "o.png")
    assert result.exit_code == 1
    assert "PNG cannot be read in bands; convert it to TIFF" in result.stderr
    assert not (tmp_path / "o.png").exists()


def test_tiff_that_cannot_stream_is_not_told_to_become_a_tiff(tmp_path):
    """A rotated TIFF (orientation 6) is turned upright whole: too big for --memory, the error
    says why and asks for an upright TIFF, not a conversion 'to TIFF'."""
    tifffile.imwrite(tmp_path / "in.tif", image((40, 30), np.uint8),
                     extratags=[(274, 3, 1, 6, True)])  # fmt: skip
    result = apply(tmp_path / "in.tif", "-k", "box", "--memory", "1K", "-o", tmp_path / "o.tif")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "a TIFF with orientation 6 must be turned upright whole" in line
    assert "rewrite it as an upright (orientation 1)" in line
    assert "convert it to TIFF" not in line
    assert not (tmp_path / "o.tif").exists()


def test_small_png_with_memory_runs_in_memory(tmp_path):
    Image.fromarray(image((10, 10, 3), np.uint8)).save(tmp_path / "in.png")
    result = ok(tmp_path / "in.png", "-k", "box", "--memory", "64M", "-o", tmp_path / "o.png")
    assert "bands" not in result.stderr


def test_streamed_output_must_be_a_tiff_or_npy_file(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((30, 30, 3), np.uint8), photometric="rgb")
    result = apply(src, "-k", "box", "--memory", "20K", "-o", tmp_path / "o.png")
    assert result.exit_code == 1 and "PNG cannot be written in bands; write .tif" in result.stderr
    result = apply(src, "-k", "box", "--memory", "20K", "-o", "-")
    assert result.exit_code == 2 and "needs an output file" in result.stderr


def test_failed_streamed_run_leaves_no_partial_file(tmp_path):
    """A .npy holding NaN in its last rows fails mid-stream: no output, no temporary."""
    x = np.zeros((60, 10))
    x[-1, 0] = np.nan
    np.save(tmp_path / "m.npy", x)
    out = tmp_path / "o.npy"
    out.write_bytes(b"precious")
    result = apply(tmp_path / "m.npy", "-k", "box", "--memory", "5K", "-o", out)
    assert result.exit_code == 1 and "NaN" in result.stderr
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npy", "o.npy"]


def test_memory_option_is_checked(tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image((30, 30), np.uint8))
    result = apply(src, "-k", "box", "--memory", "lots", "-o", tmp_path / "o.tif")
    assert result.exit_code == 2 and "memory size 'lots' is not understood" in result.stderr
    result = apply(src, "-k", "gaussian:5", "--memory", "2K", "-o", tmp_path / "o.tif")
    assert result.exit_code == 2 and "too small" in result.stderr and "--memory" in result.stderr
