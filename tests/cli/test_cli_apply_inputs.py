"""``convtool apply`` on inputs a new user brings: pipes, damaged files, TIFF kinds, Netpbm."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from convtool.cli import app

runner = CliRunner()
CONVTOOL = [sys.executable, "-m", "convtool"]


def apply(*args: object):
    return runner.invoke(app, ["apply", *map(str, args)])


def ok(*args: object):
    result = apply(*args)
    assert result.exit_code == 0, result.output
    return result


def rgb(seed: int = 0, shape=(9, 12)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3)).astype(np.uint8)


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def box3(image_u8: np.ndarray, border: str = "reflect") -> np.ndarray:
    """box:3 of 8-bit samples as convtool writes it: in [0, 1], rounded to 8 bits."""
    x = image_u8 / 255.0
    k = np.ones((3, 3, 1) if x.ndim == 3 else (3, 3)) / 9
    return np.clip(np.rint(ndimage.correlate(x, k, mode=border) * 255), 0, 255)


def test_process_substitution_and_a_fifo_are_read_not_hung_on(tmp_path):
    """A regression: the streaming probe read a pipe's first bytes, then the reader opened it
    again and waited for a writer that was gone (a FIFO hung; <(...) gave garbage)."""
    stored = rgb(1)
    Image.fromarray(stored).save(tmp_path / "a.png")
    command = " ".join(CONVTOOL)
    script = (
        f"{command} apply <(cat a.png) -k box:3 -o sub.png && "
        f"cat a.png | {command} apply /dev/stdin -k box:3 -o dev.png && "
        f"mkfifo f.png && (cat a.png > f.png &) && {command} apply f.png -k box:3 -o fifo.png"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for name in ("sub.png", "dev.png", "fifo.png"):
        np.testing.assert_array_equal(pixels(tmp_path / name), box3(stored))


def test_a_png_damaged_inside_its_zlib_stream_fails_in_a_batch_and_the_others_are_written(
    tmp_path,
):
    """A regression: the damaged file was filtered from half-decoded pixels, exit code 0."""
    stored = np.tile(rgb(2), (6, 6, 1))
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="PNG", compress_level=9)
    png = bytearray(buffer.getvalue())
    idat = png.index(b"IDAT") - 4
    length = int.from_bytes(png[idat : idat + 4], "big")
    png[idat + 8 + length // 2] ^= 0xFF
    crc = zlib.crc32(bytes(png[idat + 4 : idat + 8 + length]))
    png[idat + 8 + length : idat + 12 + length] = crc.to_bytes(4, "big")  # only zlib can tell
    (tmp_path / "b.png").write_bytes(bytes(png))
    for name in ("a.png", "c.png"):
        Image.fromarray(stored).save(tmp_path / name)
    sources = [tmp_path / n for n in ("a.png", "b.png", "c.png")]
    result = apply(*sources, "-k", "box:3", "--out-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"convtool: error: {tmp_path / 'b.png'}: broken or truncated PNG")
    assert lines[-1] == f"convtool: error: 1 of 3 inputs failed ({tmp_path / 'b.png'})"
    np.testing.assert_array_equal(pixels(tmp_path / "out" / "a.png"), box3(stored))


def test_a_jpeg_compressed_tiff_is_filtered_like_its_decoded_pixels(tmp_path):
    stored = np.repeat(np.repeat(rgb(3), 2, axis=0), 2, axis=1)
    tifffile.imwrite(tmp_path / "scan.tif", stored, photometric="rgb", compression="jpeg")
    with Image.open(tmp_path / "scan.tif") as im:
        decoded = np.asarray(im.convert("RGB"))
    ok(tmp_path / "scan.tif", "-k", "box:3", "--border", "nearest", "-o", tmp_path / "o.png")
    np.testing.assert_array_equal(pixels(tmp_path / "o.png"), box3(decoded, "nearest"))


def test_a_multipage_tiff_into_png_is_an_animated_png_of_every_page(tmp_path):
    """Every page is filtered (it used to be the first one, with a note); PNG holds them as
    APNG frames, and --page 0 gives the first page alone."""
    with tifffile.TiffWriter(tmp_path / "m.tif") as tif:
        for seed in (4, 5):
            tif.write(rgb(seed), photometric="rgb")
    result = ok(tmp_path / "m.tif", "-k", "box:3", "-o", tmp_path / "o.png")
    assert result.stderr == ""
    with Image.open(tmp_path / "o.png") as im:
        assert im.n_frames == 2
        for seed in (4, 5):
            im.seek(seed - 4)
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), box3(rgb(seed)))
    ok(tmp_path / "m.tif", "-k", "box:3", "--page", "0", "-o", tmp_path / "first.png")
    np.testing.assert_array_equal(pixels(tmp_path / "first.png"), box3(rgb(4)))


def test_a_16bit_colour_ppm_is_filtered_at_full_depth(tmp_path):
    """Pillow reads 16-bit P6 as 8-bit; it used to be refused. ImageMagick writes 16-bit PPM."""
    stored = np.random.default_rng(6).integers(0, 4096, (5, 7, 3))
    (tmp_path / "c.ppm").write_bytes(b"P6\n7 5\n4095\n" + stored.astype(">u2").tobytes())
    ok(tmp_path / "c.ppm", "-k", "identity", "-o", tmp_path / "c.png")
    expected = np.rint(stored / 4095 * 65535).astype(np.uint16)
    written = imagecodecs.png_decode((tmp_path / "c.png").read_bytes())
    np.testing.assert_array_equal(written, expected)
    raw = tmp_path / "f.tif"
    ok(tmp_path / "c.ppm", "-k", "box:3", "--map", "none", "--depth", "32", "-o", raw)
    reference = ndimage.correlate(stored / 4095, np.ones((3, 3, 1)) / 9, mode="reflect")
    np.testing.assert_allclose(tifffile.imread(raw), reference, rtol=0, atol=1e-6)


def test_pgm_output_is_grey_and_pbm_is_refused_before_any_work(tmp_path):
    """A regression: -o x.pgm of a colour image wrote a P6 colour pixmap named .pgm."""
    stored = rgb(7)
    Image.fromarray(stored).save(tmp_path / "c.png")
    result = apply(tmp_path / "c.png", "-k", "box:3", "-o", tmp_path / "c.pgm")
    assert result.exit_code == 2 and not (tmp_path / "c.pgm").exists()
    assert result.stderr == (
        f"convtool: error: a .pgm file holds grey and {tmp_path / 'c.png'} is colour (RGB); add "
        "--gray for its luminance, or write .ppm\n"
    )
    ok(tmp_path / "c.png", "-k", "box:3", "--gray", "-o", tmp_path / "g.pgm")
    assert (tmp_path / "g.pgm").read_bytes().startswith(b"P5\n12 9\n255\n")
    luma = stored @ np.array([0.299, 0.587, 0.114])
    expected = np.clip(np.rint(ndimage.correlate(luma / 255, np.ones((3, 3)) / 9) * 255), 0, 255)
    assert np.abs(pixels(tmp_path / "g.pgm") - expected).max() <= 1  # float32 luma rounding
    result = apply(tmp_path / "c.png", "-k", "box:3", "--gray", "-o", tmp_path / "g.pbm")
    assert result.exit_code == 2 and "does not write 1-bit PBM" in result.stderr
    assert not (tmp_path / "g.pbm").exists()


def test_a_format_pillow_cannot_write_names_the_output_and_leaves_nothing(tmp_path):
    """XBM holds 1-bit pictures only: Pillow's refusal, about the output, names it."""
    Image.fromarray(rgb(8)).save(tmp_path / "c.png")
    (tmp_path / "o.xbm").write_bytes(b"precious")
    result = apply(tmp_path / "c.png", "-k", "box:3", "-o", tmp_path / "o.xbm")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"convtool: error: {tmp_path / 'o.xbm'}: Pillow cannot write RGB as XBM"
    )
    assert result.stderr.endswith("write PNG or TIFF, which hold every layout\n")
    assert (tmp_path / "o.xbm").read_bytes() == b"precious"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["c.png", "o.xbm"]


def test_an_input_format_convtool_cannot_write_asks_for_another_before_any_work(tmp_path):
    """Pillow reads PSD and XPM but cannot write them: the stdout default (the input's format)
    and --out-dir (the input's name) used to give messages about options never given."""
    (tmp_path / "x.xpm").write_text(
        '/* XPM */\nstatic char *x[] = {\n"4 3 2 1",\n"a c #FF8000",\n"b c #0040FF",\n'
        '"abab",\n"bbaa",\n"aabb"\n};\n'
    )
    result = apply(tmp_path / "x.xpm", "-k", "box:3", "-o", "-")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"convtool: error: {tmp_path / 'x.xpm'} is XPM, which convtool cannot write, and standard "
        "output takes the input's format: choose one with --format (png, tiff, jpeg, webp, bmp, "
        "gif, ppm, npy, txt or csv)\n"
    )
    result = apply(tmp_path / "x.xpm", "-k", "box:3", "--out-dir", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"convtool: error: {tmp_path / 'out' / 'x.xpm'}: convtool cannot write .xpm files, and "
        "this name comes from the input"
    )
    result = apply(tmp_path / "x.xpm", "-k", "box:3", "-o", tmp_path / "y.xpm")
    assert result.exit_code == 2
    assert "convtool reads XPM files but cannot write them" in result.stderr
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["x.xpm"]  # nor --out-dir made
    with Image.open(tmp_path / "x.xpm") as im:
        decoded = np.asarray(im.convert("RGB"))
    ok(tmp_path / "x.xpm", "-k", "box:3", "--out-dir", tmp_path / "out", "-o", "{stem}.png")
    np.testing.assert_array_equal(pixels(tmp_path / "out" / "x.png"), box3(decoded))


def test_standard_input_from_a_terminal_says_how_to_end_it(tmp_path):
    """A new user who runs `convtool apply - ...` with nothing piped sees why it waits."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*CONVTOOL, "apply", "-", "-k", "0 1; 2 3", "--border", "valid", "-o", "-"],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        os.write(controller, b"0 1 2\n3 4 5\n6 7 8\n\x04")  # typed, then Ctrl-D
        out, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert process.returncode == 0, err
    assert err.decode().startswith("convtool: note: reading standard input from the terminal")
    assert out.decode() == "19 25\n37 43\n"  # the textbook's corr2d


def test_an_imagemagick_style_output_argument_is_pointed_to_o(tmp_path):
    """'convert in.png out.png' habit: the second name, not a file, is taken for an input."""
    Image.fromarray(rgb(12)).save(tmp_path / "in.png")
    result = apply(tmp_path / "in.png", tmp_path / "out.png", "-k", "box:3")
    assert result.exit_code == 2 and not (tmp_path / "out.png").exists()
    assert result.stderr == (
        f"convtool: error: '{tmp_path / 'out.png'}' is no input file; the output is named with "
        f"-o: convtool apply {tmp_path / 'in.png'} ... -o {tmp_path / 'out.png'}\n"
    )
    Image.fromarray(rgb(13)).save(tmp_path / "two.png")  # two real inputs: the batch message
    result = apply(tmp_path / "in.png", tmp_path / "two.png", "-k", "box:3")
    assert result.exit_code == 2 and "several inputs need --out-dir DIR" in result.stderr


def test_standard_output_redirected_to_a_file_of_another_format_gets_a_note(tmp_path):
    """`convtool apply in.png -k K > out.jpg` writes PNG bytes (the input's format) into
    out.jpg: a note says so and how to name the output (Linux: /proc/self/fd/1)."""
    Image.fromarray(rgb(14)).save(tmp_path / "in.png")
    command = [*CONVTOOL, "apply", "in.png", "-k", "box:3"]
    for name, noted in (("out.jpg", True), ("out.png", False)):
        with open(tmp_path / name, "wb") as stdout:
            done = subprocess.run(
                command, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE, timeout=120
            )
        assert done.returncode == 0, done.stderr
        np.testing.assert_array_equal(pixels(tmp_path / name), box3(rgb(14)))  # PNG bytes
        expected = (
            f"convtool: note: standard output is {os.path.realpath(tmp_path / name)}, but PNG is "
            "written there "
            f"(the input's format): name the output with -o {name}, or choose one with --format\n"
        )
        assert done.stderr.decode() == (expected if noted else "")


def test_a_kernel_file_without_the_at_sign_asks_for_it(tmp_path):
    """'-k ok.csv' used to say "'ok.csv' is not a number"."""
    Image.fromarray(rgb(3)).save(tmp_path / "a.png")
    (tmp_path / "ok.csv").write_text("0 1\n1 0\n")
    result = apply(tmp_path / "a.png", "-k", tmp_path / "ok.csv", "-o", tmp_path / "o.png")
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"convtool: error: kernel '{tmp_path / 'ok.csv'}': a kernel file is named with '@'; "
        f"did you mean -k @{tmp_path / 'ok.csv'}?\n"
    )
    assert not (tmp_path / "o.png").exists()


# Directories, patterns and {dir} ---------------------------------------------------------------


def shots(root: Path) -> dict[str, np.ndarray]:
    """A folder of pictures as a camera card or a download leaves it: images at two depths,
    notes, hidden files (a macOS '._' twin is not a picture), a hidden folder."""
    made = {}
    for seed, name in enumerate(["b.png", "a.png", "2024/c.png", "2024/deep/d.png"]):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        made[name] = rgb(seed)
        Image.fromarray(made[name]).save(root / name)
    (root / "notes.txt").write_text("shot on a rainy day\n")
    (root / "README.md").write_text("# holiday\n")
    (root / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / ".cache").mkdir()
    Image.fromarray(rgb(9)).save(root / ".cache" / "thumb.png")
    return made


def written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_directory_is_its_images_and_out_dir_keeps_their_folders(tmp_path):
    """It used to say "cannot tell the output format from 'out/shots'"."""
    made = shots(tmp_path / "shots")
    ok(tmp_path / "shots", "-k", "box:3", "--out-dir", tmp_path / "top")
    assert written(tmp_path / "top") == ["a.png", "b.png"]
    ok(tmp_path / "shots", "--recursive", "-k", "box:3", "--out-dir", tmp_path / "out")
    assert written(tmp_path / "out") == sorted(made)
    for name, stored in made.items():
        np.testing.assert_array_equal(pixels(tmp_path / "out" / name), box3(stored))


def test_dir_in_a_template_is_the_folder_below_the_directory_given(tmp_path):
    made = shots(tmp_path / "shots")
    ok(tmp_path / "shots", "-r", "-k", "box:3", "-o", tmp_path / "e" / "{dir}" / "{stem}-s.png")
    assert written(tmp_path / "e") == sorted(
        str(Path(name).with_name(Path(name).stem + "-s.png")) for name in made
    )
    np.testing.assert_array_equal(
        pixels(tmp_path / "e" / "2024" / "deep" / "d-s.png"), box3(made["2024/deep/d.png"])
    )


def test_two_inputs_of_one_name_are_refused_or_kept_apart_by_their_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed, folder in enumerate(["a", "b"]):
        Path(folder).mkdir()
        Image.fromarray(rgb(seed)).save(Path(folder) / "x.png")
    result = apply("a/x.png", "b/x.png", "-k", "box:3", "--out-dir", "out")
    assert result.exit_code == 2, result.output
    assert result.output == (
        "convtool: error: inputs 'a/x.png' and 'b/x.png' would both write 'out/x.png'; nothing "
        "was written (keep their folders with {dir} in an -o template, e.g. -o '{dir}/{name}')\n"
    )
    assert not Path("out").exists()
    ok("a/x.png", "b/x.png", "-k", "box:3", "--out-dir", "out", "-o", "{dir}/{name}")
    assert written(tmp_path / "out") == ["a/x.png", "b/x.png"]
    for seed, folder in enumerate(["a", "b"]):
        np.testing.assert_array_equal(pixels(Path("out") / folder / "x.png"), box3(rgb(seed)))
    # two directories given, a picture of one name at the top of each: refused too
    result = apply("a", "b", "-k", "box:3", "--out-dir", "again")
    assert result.exit_code == 2 and "would both write 'again/x.png'" in result.output
    assert "name the folder that holds both, convtool apply . --recursive" in result.output
    assert not Path("again").exists()


def test_a_quoted_pattern_is_expanded_as_a_shell_would(tmp_path, monkeypatch):
    """'shots/*.png' (a Windows shell passes it as it is) used to be 'no such file'."""
    monkeypatch.chdir(tmp_path)
    made = shots(Path("shots"))
    ok("shots/*.png", "-k", "box:3", "--out-dir", "flat")
    assert written(tmp_path / "flat") == ["a.png", "b.png"]  # not ._a.png, as a shell
    ok("shots/**/*.png", "--recursive", "-k", "box:3", "-o", "deep/{dir}/{name}")
    assert written(tmp_path / "deep") == sorted(f"shots/{name}" for name in made)
    np.testing.assert_array_equal(pixels("deep/shots/2024/c.png"), box3(made["2024/c.png"]))
    result = apply("shots/**/*.png", "-k", "box:3", "--out-dir", "x")
    assert result.exit_code == 2
    assert result.output == (
        "convtool: error: 'shots/**/*.png': '**' reaches into sub-folders with --recursive; "
        "add it (or use '*')\n"
    )
    result = apply("shots/*.jpg", "-k", "box:3", "--out-dir", "x")
    assert result.exit_code == 1
    assert result.output == "convtool: error: shots/*.jpg: no file matches this pattern\n"
    assert not Path("x").exists()


def test_a_directory_without_images_is_one_error_and_nothing_is_made(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "notes.txt").write_text("1 2\n")
    Image.fromarray(rgb(1)).save(tmp_path / "docs" / "sub" / "x.png")
    result = apply(tmp_path / "docs", "-k", "box:3", "--out-dir", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"convtool: error: {tmp_path / 'docs'}: no images in this directory (convtool takes its "
        "image files, such as .png, .jpg and .tif, and .npy matrices; .txt and .csv are named "
        "one by one); add --recursive to look in its sub-folders\n"
    )
    assert not (tmp_path / "out").exists()
    ok(tmp_path / "docs", "-r", "-k", "box:3", "--out-dir", tmp_path / "out")
    assert written(tmp_path / "out") == ["sub/x.png"]


def test_a_directory_needs_somewhere_to_write_its_images(tmp_path):
    Image.fromarray(rgb(1)).save(tmp_path / "only.png")  # one image: still a batch
    result = apply(tmp_path, "-k", "box:3", "-o", tmp_path / "o.png")
    assert result.exit_code == 2
    assert result.output.startswith("convtool: error: a directory's images need --out-dir DIR")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only.png"]


def test_a_dir_that_climbs_out_of_the_output_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    Image.fromarray(rgb(1)).save(tmp_path / "up.png")
    for given, folder in (("../up.png", ".."), (str(tmp_path / "up.png"), str(tmp_path))):
        result = apply(given, "-k", "box:3", "-o", "out/{dir}/{name}")
        assert result.exit_code == 2, result.output
        assert result.output == (
            f"convtool: error: -o template 'out/{{dir}}/{{name}}': {{dir}} of {given!r} is "
            f"{folder!r}, which would put the result outside the output folder; name the "
            "folder that holds the inputs instead (convtool apply DIR --recursive: {dir} is "
            "then relative to DIR)\n"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up.png", "work"]
    assert list((tmp_path / "work").iterdir()) == []
    ok("../up.png", "-k", "box:3", "-o", "out/{stem}.png")  # {stem} stays inside


def test_an_out_dir_inside_the_directory_is_not_read_again(tmp_path):
    made = shots(tmp_path / "shots")
    for _ in range(2):
        ok(tmp_path / "shots", "-r", "-k", "box:3", "--out-dir", tmp_path / "shots" / "out")
    assert written(tmp_path / "shots" / "out") == sorted(made)
