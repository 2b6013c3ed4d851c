"""``convtool apply`` through Typer's CliRunner and through real processes and pipes."""

from __future__ import annotations

import io
import os
import platform
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, JpegImagePlugin
from scipy import ndimage
from typer.testing import CliRunner

from convtool.cli import app, main
from convtool.kernels.spec import load_kernel

from conftest import stderr_on_a_terminal
from references import corr2d

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
CONVTOOL = [sys.executable, "-m", "convtool"]

# The textbook's 6×8 image: white, with columns 2 to 5 black.
TEXTBOOK = np.full((6, 8), 255, np.uint8)
TEXTBOOK[:, 2:6] = 0


def apply(*args: object, input: bytes | None = None):
    result = runner.invoke(app, ["apply", *map(str, args)], input=input)
    return result


def ok(*args: object, input: bytes | None = None):
    result = apply(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def save(path, array: np.ndarray, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return Path(path)


def rgb(seed: int = 0, shape=(9, 12)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3)).astype(np.uint8)


# The textbook's examples ---------------------------------------------------------------------


def test_textbook_edge_detector_on_an_8bit_png(tmp_path):
    """Valid correlation with [1, -1]: +1 (white) in column 1, -1 (clipped to black) in 5."""
    src = save(tmp_path / "x.png", TEXTBOOK)
    ok(src, "-k", "edge", "--border", "valid", "-o", tmp_path / "y.png")
    expected = np.zeros((6, 7), np.uint8)
    expected[:, 1] = 255
    np.testing.assert_array_equal(pixels(tmp_path / "y.png"), expected)


def test_textbook_edge_detector_with_map_abs_keeps_both_edges(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    ok(src, "-k", "edge", "--border", "valid", "--map", "abs", "-o", tmp_path / "y.png")
    expected = np.zeros((6, 7), np.uint8)
    expected[:, [1, 5]] = 255
    np.testing.assert_array_equal(pixels(tmp_path / "y.png"), expected)


def test_textbook_corr2d_on_a_text_matrix(tmp_path):
    (tmp_path / "X.txt").write_text("0 1 2\n3 4 5\n6 7 8\n")
    result = ok(tmp_path / "X.txt", "-k", "0 1; 2 3", "--border", "valid", "-o", "-")
    assert result.stdout == "19 25\n37 43\n"


def test_textbook_corr2d_in_a_real_process(tmp_path):
    (tmp_path / "X.txt").write_text("0 1 2\n3 4 5\n6 7 8\n")
    cmd = [*CONVTOOL, "apply", "X.txt", "-k", "0 1; 2 3", "--border", "valid", "-o", "-"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "19 25\n37 43\n", "")


# Every option, on matrices against scipy -----------------------------------------------------

M = (np.arange(42, dtype=np.float64).reshape(6, 7) * 7 % 11) - 3.5
K = np.array([[1.0, -2.0, 4.0], [8.0, 16.0, -32.0]])  # distinct entries: flips show


@pytest.fixture
def matrix(tmp_path) -> Path:
    np.save(tmp_path / "m.npy", M)
    (tmp_path / "k.txt").write_text("1 -2 4\n8 16 -32\n")
    return tmp_path / "m.npy"


def run_matrix(matrix: Path, *options: object) -> np.ndarray:
    out = matrix.parent / "out.npy"
    ok(matrix, "-k", f"@{matrix.parent / 'k.txt'}", "-o", out, *options)
    return np.load(out)


@pytest.mark.parametrize("border", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_border_modes_equal_scipy(matrix, border):
    got = run_matrix(matrix, "--border", border, "--cval", "2.5")
    expected = ndimage.correlate(M, K, mode=border, cval=2.5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_default_border_is_reflect_and_valid_is_corr2d(matrix):
    np.testing.assert_allclose(run_matrix(matrix), ndimage.correlate(M, K, mode="reflect"))
    np.testing.assert_allclose(run_matrix(matrix, "--border", "valid"), corr2d(M, K))


def test_convolve_flips_the_kernel(matrix):
    got = run_matrix(matrix, "--convolve", "--border", "valid")
    np.testing.assert_allclose(got, corr2d(M, K[::-1, ::-1]))


def test_normalize_scale_bias(matrix):
    got = run_matrix(matrix, "--normalize", "--scale", "2", "--bias", "-0.5", "--border", "wrap")
    expected = 2 * ndimage.correlate(M, K / K.sum(), mode="wrap") - 0.5
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_several_kernels_apply_in_order_without_rounding(matrix):
    out = matrix.parent / "out.npy"
    ok(matrix, "-k", "0.1 0.2; 0.3 0.4", "-k", "1; -1", "--border", "nearest", "-o", out)
    step = ndimage.correlate(M, np.array([[0.1, 0.2], [0.3, 0.4]]), mode="nearest")
    expected = ndimage.correlate(step, np.array([[1.0], [-1.0]]), mode="nearest")
    np.testing.assert_allclose(np.load(out), expected, atol=1e-12)


def test_kernel_file_bias_is_added_after_its_kernel(matrix):
    (matrix.parent / "b.txt").write_text("# bias: 10\n1 1\n")
    out = matrix.parent / "out.npy"
    ok(matrix, "-k", f"@{matrix.parent / 'b.txt'}", "-k", "2", "--bias", "1", "-o", out)
    expected = 2 * (ndimage.correlate(M, np.array([[1.0, 1.0]]), mode="reflect") + 10) + 1
    np.testing.assert_allclose(np.load(out), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("map_", "transform"),
    [
        ("none", lambda y: y),
        ("clip", lambda y: np.clip(y, 0, 1)),
        ("abs", np.abs),
        ("rescale", lambda y: (y - y.min()) / (y.max() - y.min())),
    ],
)
def test_map_on_matrix_outputs(matrix, map_, transform):
    expected = transform(ndimage.correlate(M, K, mode="reflect"))
    np.testing.assert_allclose(run_matrix(matrix, "--map", map_), expected, atol=1e-12)


def test_matrix_output_depth_32_is_float32(matrix):
    got = run_matrix(matrix, "--depth", "32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ndimage.correlate(M, K, mode="reflect").astype(np.float32))


def test_threads_do_not_change_the_result(matrix):
    np.testing.assert_array_equal(run_matrix(matrix, "--threads", "1"), run_matrix(matrix))


# Every option, on images ---------------------------------------------------------------------


def test_map_rescale_and_bias_on_an_image(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    ok(src, "-k", "edge", "--border", "valid", "--map", "rescale", "-o", tmp_path / "r.png")
    # -1 → 0, 0 → 0.5 → 127.5 → 128 (round to nearest even), +1 → 255
    expected = np.full((6, 7), 128, np.uint8)
    expected[:, 1], expected[:, 5] = 255, 0
    np.testing.assert_array_equal(pixels(tmp_path / "r.png"), expected)
    ok(src, "-k", "edge", "--border", "valid", "--bias", "0.5", "-o", tmp_path / "b.png")
    expected[:, 1], expected[:, 5] = 255, 0  # 1.5 clamps to 255, -0.5 to 0
    np.testing.assert_array_equal(pixels(tmp_path / "b.png"), expected)


def test_cval_is_in_the_unit_scale_at_every_depth(tmp_path):
    for dtype, maxval in ((np.uint8, 255), (np.uint16, 65535)):
        src = tmp_path / f"z{maxval}.png"
        Image.fromarray(np.zeros((3, 3), dtype)).save(src)
        out = tmp_path / f"o{maxval}.png"
        ok(src, "-k", "1 1 1", "--border", "constant", "--cval", "1", "-o", out)
        expected = np.zeros((3, 3), dtype)
        expected[:, [0, 2]] = maxval
        np.testing.assert_array_equal(pixels(out), expected)


def test_gray_makes_one_luminance_channel(tmp_path):
    src = save(tmp_path / "c.png", rgb(1))
    ok(src, "-k", "identity", "--gray", "-o", tmp_path / "g.png")
    r, g, b = (rgb(1)[..., i].astype(np.float64) / 255 for i in range(3))
    expected = np.rint((0.299 * r + 0.587 * g + 0.114 * b) * 255)
    got = pixels(tmp_path / "g.png")
    assert got.ndim == 2
    np.testing.assert_allclose(got, expected, atol=1)  # float32 arithmetic at ties
    assert np.mean(got == expected) > 0.95


def test_depth_options(tmp_path):
    src = save(tmp_path / "c.png", rgb(2))
    ok(src, "-k", "identity", "--depth", "16", "-o", tmp_path / "c16.png")
    ok(src, "-k", "identity", "--depth", "32", "-o", tmp_path / "c32.tif")
    ok(tmp_path / "c16.png", "-k", "identity", "--depth", "8", "-o", tmp_path / "c8.png")
    c16 = cv2.imread(str(tmp_path / "c16.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(c16, rgb(2).astype(np.uint16) * 257)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c32.tif"), rgb(2) / np.float32(255))
    np.testing.assert_array_equal(pixels(tmp_path / "c8.png"), rgb(2))
    result = apply(src, "-k", "identity", "--depth", "32", "-o", tmp_path / "bad.png")
    assert result.exit_code == 2 and "PNG holds 8-bit or 16-bit" in result.output
    assert not (tmp_path / "bad.png").exists()


def test_float_tiff_to_png_is_16bit_with_a_note(tmp_path):
    values = np.array([[[-0.5, 0.25, 2.0], [0.5, 1.0, 0.0]]], np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb")
    result = ok(tmp_path / "f.tif", "-k", "identity", "-o", tmp_path / "f.png")
    assert "convtool: note: PNG holds 8-bit or 16-bit: writing 16-bit" in result.stderr
    expected = np.rint(np.clip(values, 0, 1) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "f.png"), -1)[..., ::-1], expected)
    ok(tmp_path / "f.tif", "-k", "identity", "--map", "none", "-o", tmp_path / "raw.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "raw.tif"), values)


def test_map_none_with_an_integer_output_is_a_usage_error(tmp_path, capsys):
    src = save(tmp_path / "x.png", TEXTBOOK)
    assert (
        main(["apply", str(src), "-k", "edge", "--map", "none", "-o", str(tmp_path / "y.png")]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("convtool: error: --map none keeps raw values") and err.count("\n") == 1


def test_16bit_png_and_tiff_round_trip_through_the_command(tmp_path):
    stored = np.random.default_rng(3).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", stored, photometric="rgb")
    ok(tmp_path / "a.tif", "-k", "identity", "-o", tmp_path / "b.png")
    ok(tmp_path / "b.png", "-k", "identity", "-o", tmp_path / "c.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), stored)


def test_image_to_npy_and_txt_hold_unit_values(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    ok(src, "-k", "identity", "-o", tmp_path / "x.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), TEXTBOOK / np.float32(255))
    ok(src, "-k", "edge", "--border", "valid", "-o", tmp_path / "e.txt")
    row = "0 1 0 0 0 -1 0"
    assert (tmp_path / "e.txt").read_text() == (row + "\n") * 6


def test_alpha_auto_keep_and_filter(tmp_path):
    """A blur: the default (auto) and filter premultiply; keep lets the hidden green bleed in."""
    stored = np.zeros((1, 4, 4), np.uint8)
    stored[0, :2] = [255, 0, 0, 255]  # opaque red
    stored[0, 2:] = [0, 255, 0, 0]  # transparent green
    src = save(tmp_path / "a.png", stored)
    blur = ["-k", "1 1 1", "--normalize", "--border", "nearest"]
    ok(src, *blur, "--alpha", "keep", "-o", tmp_path / "keep.png")
    keep = pixels(tmp_path / "keep.png")
    np.testing.assert_array_equal(keep[..., 3], stored[..., 3])  # alpha as it was
    np.testing.assert_array_equal(keep[0, 1], [170, 85, 0, 255])  # green bled in
    expected = np.array([[[255, 0, 0, 255], [255, 0, 0, 170], [255, 0, 0, 85], [0, 0, 0, 0]]])
    for mode in ("filter", None):
        ok(src, *blur, *(["--alpha", mode] if mode else []), "-o", tmp_path / "out.png")
        np.testing.assert_array_equal(pixels(tmp_path / "out.png"), expected)


def test_quality_and_444(tmp_path):
    src = save(tmp_path / "c.png", rgb(4, (64, 64)))
    ok(src, "-k", "box", "--quality", "50", "-o", tmp_path / "q50.jpg")
    ok(src, "-k", "box", "-o", tmp_path / "q95.jpg")
    assert (tmp_path / "q50.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    with Image.open(tmp_path / "q95.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4 at the default quality 95
    with Image.open(tmp_path / "q50.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 2
    assert apply(src, "-k", "box", "--quality", "101", "-o", tmp_path / "x.jpg").exit_code == 2


def test_compress_level(tmp_path):
    src = save(tmp_path / "c.png", rgb(5, (64, 64)) // 64 * 64)
    ok(src, "-k", "identity", "--compress-level", "0", "-o", tmp_path / "l0.png")
    ok(src, "-k", "identity", "--compress-level", "9", "-o", tmp_path / "l9.png")
    assert (tmp_path / "l9.png").stat().st_size < (tmp_path / "l0.png").stat().st_size / 2
    np.testing.assert_array_equal(pixels(tmp_path / "l0.png"), pixels(tmp_path / "l9.png"))


def test_format_for_standard_output(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    result = ok(src, "-k", "identity", "-o", "-", "--format", "npy")
    np.testing.assert_array_equal(
        np.load(io.BytesIO(result.stdout_bytes)), TEXTBOOK / np.float32(255)
    )
    result = ok(src, "-k", "identity")  # no -o, stdout not a terminal: the input's format
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(result.stdout_bytes))), TEXTBOOK)
    result = apply(src, "-k", "identity", "-o", tmp_path / "y.png", "--format", "jpeg")
    assert result.exit_code == 2 and "contradicts" in result.output


def test_max_pixels(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    result = apply(src, "-k", "box", "--max-pixels", "47", "-o", tmp_path / "y.png")
    assert result.exit_code == 1
    assert "8x6 is 48 pixels, more than the limit of 47" in result.stderr
    ok(src, "-k", "box", "--max-pixels", "48", "-o", tmp_path / "y.png")


def test_metadata_and_orientation_through_the_command(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to view
    exif[0x010F] = "ACME"
    stored = rgb(6, (3, 5))
    with Image.open(SAMPLES / "astronaut.png") as im:
        profile = im.info["icc_profile"]
    src = save(tmp_path / "o.png", stored, exif=exif.tobytes(), dpi=(300, 300), icc_profile=profile)
    ok(src, "-k", "identity", "-o", tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        np.testing.assert_array_equal(np.asarray(im), np.rot90(stored, 1))
        assert im.info["icc_profile"] == profile
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert im.getexif()[0x010F] == "ACME" and im.getexif().get(0x0112, 1) == 1


def test_negative_numbers_as_option_values(tmp_path):
    (tmp_path / "x.txt").write_text("1 2 4\n")
    result = ok(tmp_path / "x.txt", "-k", "-1 1", "--bias", "-0.5", "--border", "valid", "-o", "-")
    assert result.stdout == "0.5 1.5\n"


# Outputs, batches, safety --------------------------------------------------------------------


def test_out_dir_and_templates(tmp_path):
    a = save(tmp_path / "a.png", TEXTBOOK)
    b = save(tmp_path / "b.png", 255 - TEXTBOOK)
    ok(a, b, "-k", "edge", "--map", "abs", "--out-dir", tmp_path / "new" / "dir")
    ok(a, b, "-k", "edge", "-o", tmp_path / "edges" / "{stem}-{ext}-sobel.tif")
    for name, source in (("a", TEXTBOOK), ("b", 255 - TEXTBOOK)):
        expected = np.abs(ndimage.correlate(source / 255.0, [[1.0, -1.0]], mode="reflect"))
        np.testing.assert_array_equal(
            pixels(tmp_path / "new" / "dir" / f"{name}.png"), np.rint(expected * 255)
        )
        assert (tmp_path / "edges" / f"{name}-png-sobel.tif").exists()
    ok(a, "-k", "identity", "-o", tmp_path / "t" / "{name}.npy")
    assert (tmp_path / "t" / "a.png.npy").exists()


def test_batch_needs_a_destination_and_refuses_clashes(tmp_path, capsys):
    a = save(tmp_path / "a.png", TEXTBOOK)
    sub = tmp_path / "sub"
    sub.mkdir()
    b = save(sub / "a.png", TEXTBOOK)
    assert main(["apply", str(a), str(b), "-k", "box", "-o", str(tmp_path / "o.png")]) == 2
    assert "several inputs need --out-dir DIR or an -o template" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["apply", str(a), str(b), "-k", "box", "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "would both write" in err and "nothing was written" in err
    assert not out.exists() or list(out.iterdir()) == []
    assert main(["apply", str(a), str(b), "-k", "box", "-o", str(sub / "{name}")]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["apply", str(a), "-", "-k", "box", "--out-dir", str(out)]) == 2
    assert main(["apply", str(a), "-k", "box", "-o", "{nope}.png"]) == 2
    assert "unknown placeholder {nope}" in capsys.readouterr().err


def test_batch_with_one_broken_file_finishes_the_others(tmp_path):
    good = [save(tmp_path / f"{n}.png", TEXTBOOK) for n in ("a", "c")]
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    result = apply(good[0], tmp_path / "b.png", good[1], "-k", "box", "--out-dir", tmp_path / "o")
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png", "c.png"]
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"convtool: error: {tmp_path / 'b.png'}: not an image")
    assert lines[-1] == f"convtool: error: 1 of 3 inputs failed ({tmp_path / 'b.png'})"


def test_a_failing_run_leaves_an_existing_output_alone(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = apply(src, "-k", "box:9", "--border", "valid", "-o", out)
    assert result.exit_code == 1 and "larger than the 6x8 image" in result.stderr
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "x.png"]


def test_output_may_be_the_input(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    ok(src, "-k", "edge", "--border", "valid", "--map", "abs", "-o", src)
    assert pixels(src).shape == (6, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_plain_output_into_a_missing_directory_is_an_error(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    result = apply(src, "-k", "box", "-o", tmp_path / "missing" / "y.png")
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["apply", str(tmp_path / "nope.png"), "-k", "box", "-o", "-"]) == 1
    assert capsys.readouterr().err == f"convtool: error: {tmp_path / 'nope.png'}: no such file\n"
    assert main(["apply", "x.png", "-k", "sobelx", "-o", "-"]) == 1
    assert capsys.readouterr().err.startswith("convtool: error: unknown kernel 'sobelx'")
    assert main(["apply", "x.png", "-o", "-"]) == 2  # -k is required
    err = capsys.readouterr().err
    assert err.startswith("convtool: error: ") and err.count("\n") == 1


def test_help_has_examples():
    result = runner.invoke(app, ["apply", "--help"])
    assert result.exit_code == 0
    assert "convtool apply photo.png -k sobel-x --map abs -o edges.png" in result.output
    for option in ("--border", "--cval", "--convolve", "--normalize", "--scale", "--bias",
                   "--map", "--gray", "--depth", "--alpha", "--quality", "--threads",
                   "--out-dir", "--format", "--compress-level", "--max-pixels"):  # fmt: skip
        assert option in result.output


def test_apply_help_does_not_import_numba():
    code = (
        "import sys\nimport convtool.cli.apply\nfrom convtool.cli import main\n"
        "assert main(['apply', '--help']) == 0\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# Real processes: pipes, terminals, Ctrl-C ----------------------------------------------------


def test_stdin_to_stdout_chain(tmp_path):
    src = save(tmp_path / "a.png", rgb(7, (20, 30)))
    with open(src, "rb") as stdin:
        first = subprocess.Popen(
            [*CONVTOOL, "apply", "-", "-k", "box:3"], stdin=stdin, stdout=subprocess.PIPE
        )
        second = subprocess.run(
            [*CONVTOOL, "apply", "-", "-k", "laplacian", "-o", "out.png"],
            stdin=first.stdout,
            cwd=tmp_path,
            capture_output=True,
        )
        assert first.stdout is not None
        first.stdout.close()
        assert first.wait() == 0 and second.returncode == 0, second.stderr
    # the same two steps through files, in this process
    ok(src, "-k", "box:3", "-o", tmp_path / "step.png")
    ok(tmp_path / "step.png", "-k", "laplacian", "-o", tmp_path / "files.png")
    np.testing.assert_array_equal(pixels(tmp_path / "out.png"), pixels(tmp_path / "files.png"))
    step = np.rint(ndimage.correlate(rgb(7, (20, 30)) / 255.0, np.ones((3, 3, 1)) / 9) * 255)
    lap = load_kernel("laplacian").weights[..., np.newaxis]
    expected = np.clip(np.rint(ndimage.correlate(step / 255.0, lap) * 255), 0, 255)
    assert np.abs(pixels(tmp_path / "out.png") - expected).max() <= 1


def test_a_closed_pipe_ends_quietly(tmp_path):
    shell = (
        f"{sys.executable} -m convtool apply {SAMPLES / 'camera.png'} -k box:3 -o - "
        f"2>{tmp_path / 'err'} | head -c 10 >/dev/null"
    )
    subprocess.run(["bash", "-c", shell], check=True)
    assert (tmp_path / "err").read_text() == ""


def test_no_output_on_a_terminal_is_refused(tmp_path):
    src = save(tmp_path / "x.png", TEXTBOOK)
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*CONVTOOL, "apply", str(src), "-k", "box"],
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 2
    assert done.stderr.startswith("convtool: error: standard output is a terminal")
    assert "-o FILE" in done.stderr


def test_a_batch_shows_progress_on_a_terminal_only(tmp_path):
    inputs = [str(save(tmp_path / f"{n}.png", TEXTBOOK)) for n in "abc"]
    code, shown = stderr_on_a_terminal(
        [*CONVTOOL, "apply", *inputs, "-k", "box", "--out-dir", str(tmp_path / "o")]
    )
    assert code == 0
    assert b"filtering" in shown and b"100%" in shown
    quiet = apply(*inputs, "-k", "box", "--out-dir", tmp_path / "p")  # stderr not a terminal
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["a.png", "b.png", "c.png"]


def test_ctrl_c_exits_130_without_traceback_or_file(tmp_path):
    proc = subprocess.Popen(
        [*CONVTOOL, "apply", "-", "-k", "box", "-o", "out.png"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        text=True,
    )
    _wait_until_reading_stdin(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def _wait_until_reading_stdin(pid: int, timeout: float = 60.0) -> None:
    """Wait until the process blocks in read(0, ...) (Linux /proc), else a generous sleep."""
    read = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())  # read()'s syscall number
    syscall = Path(f"/proc/{pid}/syscall")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = syscall.read_text().split()
        except OSError:
            fields = []
        if read is None or not fields:
            time.sleep(3.0)
            return
        if fields[:2] == [read, "0x0"]:  # read() on file descriptor 0
            return
        time.sleep(0.05)
    raise AssertionError("convtool never started reading standard input")


def test_debug_shows_a_traceback(tmp_path):
    done = subprocess.run(
        [*CONVTOOL, "--debug", "apply", "nope.png", "-k", "box", "-o", "x.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "ImageError: nope.png: no such file" in done.stderr


def test_the_readme_command_works(tmp_path):
    ok(SAMPLES / "camera.png", "-k", "sobel-x", "--map", "abs", "-o", tmp_path / "edges.png")
    camera = pixels(SAMPLES / "camera.png") / 255.0
    sobel = np.abs(ndimage.correlate(camera, load_kernel("sobel-x").weights, mode="reflect"))
    expected = np.clip(np.rint(sobel * 255), 0, 255)
    assert np.abs(pixels(tmp_path / "edges.png") - expected).max() <= 1


# OpenCV as an oracle -------------------------------------------------------------------------

OPENCV_CASES = [
    ("box:5", 0.0),
    ("gaussian:1.5", 0.0),
    ("sharpen", 0.0),
    ("sobel-x", 0.0),
    ("emboss", 0.5),
    ("1 2; -3 4", 0.0),  # even size: the anchor at (kh//2, kw//2), as OpenCV's default
    ("log:sigma=1", 0.5),
]


@pytest.mark.parametrize("photo", ["camera.png", "coffee.png", "chelsea.png", "astronaut.png"])
def test_matches_opencv_filter2d_within_one_grey_level(tmp_path, photo):
    image = cv2.imread(str(SAMPLES / photo), cv2.IMREAD_UNCHANGED)
    for spec, bias in OPENCV_CASES:
        out = tmp_path / "out.png"
        ok(SAMPLES / photo, "-k", spec, "--border", "mirror", "--bias", bias, "-o", out)
        weights = load_kernel(spec).weights.astype(np.float32)
        expected = cv2.filter2D(
            image, -1, weights, delta=bias * 255, borderType=cv2.BORDER_REFLECT_101
        )
        got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        difference = np.abs(got.astype(int) - expected.astype(int)).max()
        assert difference <= 1, (photo, spec, difference)
