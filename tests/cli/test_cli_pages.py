"""``convtool apply`` and ``learn`` on every page and every frame: multi-page TIFF, animated GIF,
WebP and PNG, checked against scipy.ndimage (each frame filtered alone), read back with
Pillow, tifffile and ImageMagick's ``identify``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from convtool.cli import app

runner = CliRunner()
CONVTOOL = [sys.executable, "-m", "convtool"]
IDENTIFY = shutil.which("identify")
identify = pytest.mark.skipif(IDENTIFY is None, reason="ImageMagick's identify is not installed")

KERNEL = "1 2 4; 8 16 32"
"""Distinct entries, so that a flip or a transpose cannot hide; filtered with --normalize."""
WEIGHTS = np.array([[1, 2, 4], [8, 16, 32]], dtype=np.float64) / 63
DURATIONS = [40, 80, 120, 160]


def ok(*args: object):
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def filtered(stored: np.ndarray) -> np.ndarray:
    """One 8-bit frame filtered alone, as convtool writes it: scipy's correlate in [0, 1]."""
    x = stored / 255.0
    k = WEIGHTS if x.ndim == 2 else WEIGHTS[..., np.newaxis]
    return np.clip(np.rint(ndimage.correlate(x, k, mode="reflect") * 255), 0, 255)


def write_stack(path, pages: np.ndarray) -> None:
    """Pages written as a z-stack (one grey page each, whatever their count)."""
    tifffile.imwrite(path, pages, photometric="minisblack")


def grey_frames(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (11, 14), dtype=np.uint8) for _ in range(count)]


def colour_frames(count: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (11, 14, 3), dtype=np.uint8) for _ in range(count)]


def frames_of(path, mode: str) -> tuple[list[np.ndarray], list[int], list[int | None], object]:
    """Every frame as Pillow shows it, with its duration and disposal, and the loop count."""
    shown, durations, disposals = [], [], []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            shown.append(np.asarray(im.convert(mode)))
            durations.append(int(im.info.get("duration", 0)))
            disposals.append(getattr(im, "disposal_method", getattr(im, "dispose_op", None)))
        return shown, durations, disposals, im.info.get("loop")


def save_animation(path, frames, **options):
    """``frames`` (arrays) saved by Pillow as one animated file, with its ``save_all`` options."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], **options)


def assert_each_frame_filtered_alone(frames, shown):
    assert len(shown) == len(frames)
    for i, (frame, out) in enumerate(zip(frames, shown, strict=True)):
        diff = np.abs(out.astype(int) - filtered(frame))
        assert diff.max() <= 1, f"frame {i}: {diff.max()} levels off scipy"


def test_an_animated_gif_keeps_frames_durations_loop_and_disposal(tmp_path):
    frames = grey_frames()
    save_animation(
        tmp_path / "in.gif",
        frames,
        duration=DURATIONS,
        loop=3,
        disposal=[1, 2, 1, 2],
    )
    ok("apply", tmp_path / "in.gif", "-k", KERNEL, "--normalize", "-o", tmp_path / "out.gif")
    shown, durations, disposals, loop = frames_of(tmp_path / "out.gif", "L")
    assert_each_frame_filtered_alone(frames, shown)
    assert durations == DURATIONS
    assert disposals == [1, 2, 1, 2]
    assert loop == 3


@identify
def test_imagemagick_reads_the_gif_timing_back(tmp_path):
    save_animation(
        tmp_path / "in.gif",
        grey_frames(),
        duration=DURATIONS,
        loop=0,
        disposal=2,
    )
    ok("apply", tmp_path / "in.gif", "-k", KERNEL, "--normalize", "-o", tmp_path / "out.gif")
    out = subprocess.run(
        [IDENTIFY, "-format", "%T %D\n", tmp_path / "out.gif"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0::2] == [str(d // 10) for d in DURATIONS]  # centiseconds
    assert out[1::2] == ["Background"] * 4
    verbose = subprocess.run(
        [IDENTIFY, "-verbose", f"{tmp_path / 'out.gif'}[0]"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"Iterations: 0\b", verbose)


def test_an_animated_png_keeps_its_frames_and_timing(tmp_path):
    frames = colour_frames()
    save_animation(
        tmp_path / "in.png",
        frames,
        duration=DURATIONS,
        loop=2,
        disposal=[0, 1, 2, 0],
    )
    ok("apply", tmp_path / "in.png", "-k", KERNEL, "--normalize", "-o", tmp_path / "out.png")
    shown, durations, disposals, loop = frames_of(tmp_path / "out.png", "RGB")
    assert_each_frame_filtered_alone(frames, shown)
    assert durations == DURATIONS
    assert disposals == [0, 1, 2, 0]
    assert loop == 2


def test_an_animated_webp_keeps_its_frames_and_timing(tmp_path):
    frames = colour_frames(seed=3)
    save_animation(
        tmp_path / "in.webp",
        frames,
        duration=DURATIONS,
        loop=4,
        lossless=True,
    )
    out = tmp_path / "out.webp"
    ok("apply", tmp_path / "in.webp", "-k", KERNEL, "--normalize", "--lossless", "-o", out)
    shown, durations, _, loop = frames_of(out, "RGB")
    assert_each_frame_filtered_alone(frames, shown)
    assert durations == DURATIONS
    assert loop == 4
    if IDENTIFY is not None:
        delays = subprocess.run(
            [IDENTIFY, "-format", "%T\n", out], capture_output=True, text=True, check=True
        ).stdout.split()
        assert delays == [str(d // 10) for d in DURATIONS]


def test_a_multi_page_tiff_is_filtered_page_by_page(tmp_path):
    """A z-stack: every page, as tifffile reads it, is scipy's result for that page alone."""
    frames = grey_frames(6, seed=5)
    write_stack(tmp_path / "z.tif", np.stack(frames))
    ok("apply", tmp_path / "z.tif", "-k", KERNEL, "--normalize", "-o", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 6
        shown = [page.asarray() for page in tif.pages]
    assert_each_frame_filtered_alone(frames, shown)
    with Image.open(tmp_path / "out.tif") as im:
        assert im.n_frames == 6
    if IDENTIFY is not None:
        pages = subprocess.run(
            [IDENTIFY, "-format", "%p %wx%h\n", tmp_path / "out.tif"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        assert pages[:6] == [f"{i} 14x11" for i in range(6)]


def test_page_picks_pages_counted_from_zero_as_imagemagick(tmp_path):
    """``--page 2`` is ImageMagick's ``z.tif[2]`` and tifffile's ``key=2``; ``1-3`` its
    ``[1-3]``, both ends included."""
    frames = grey_frames(5, seed=6)
    write_stack(tmp_path / "z.tif", np.stack(frames))
    ok(
        "apply",
        tmp_path / "z.tif",
        "-k",
        KERNEL,
        "--normalize",
        "--page",
        "2",
        "-o",
        tmp_path / "two.png",
    )
    with Image.open(tmp_path / "two.png") as im:
        assert_each_frame_filtered_alone([frames[2]], [np.asarray(im)])
    ok(
        "apply",
        tmp_path / "z.tif",
        "-k",
        KERNEL,
        "--normalize",
        "--page",
        "1-3",
        "-o",
        tmp_path / "some.tif",
    )
    with tifffile.TiffFile(tmp_path / "some.tif") as tif:
        assert_each_frame_filtered_alone(frames[1:4], [p.asarray() for p in tif.pages])


def test_learn_pairs_page_i_with_page_i(tmp_path):
    """A stack and its filtered stack give the kernel back, from every page pair."""
    frames = grey_frames(3, seed=7)
    write_stack(tmp_path / "in.tif", np.stack(frames))
    write_stack(tmp_path / "out.tif", np.stack([filtered(f).astype(np.uint8) for f in frames]))
    result = ok("learn", tmp_path / "in.tif", tmp_path / "out.tif", "--size", "2x3")
    learned = np.array(
        [
            [float(v) for v in line.split()]
            for line in result.stdout.splitlines()
            if line and not line.startswith("#")
        ]
    )
    np.testing.assert_allclose(learned, WEIGHTS, atol=2e-3)


def run(*args: object, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVTOOL, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convtool: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_page_errors_are_one_line_and_write_nothing(tmp_path):
    write_stack(tmp_path / "z.tif", np.stack(grey_frames(3)))
    (tmp_path / "keep.tif").write_bytes(b"existing")
    done = run("apply", "z.tif", "-k", "box", "--page", "3", "-o", "keep.tif", cwd=tmp_path)
    assert_one_error_line(done, "z.tif has 3 pages", "pages 0 to 2")
    done = run("apply", "z.tif", "-k", "box", "--page", "two", "-o", "keep.tif", cwd=tmp_path)
    assert_one_error_line(done, "--page 'two'", "0-based")
    done = run("apply", "z.tif", "-k", "box", "-o", "keep.jpg", cwd=tmp_path)
    assert_one_error_line(done, "3 pages", "JPEG holds one picture", "--page N")
    done = run("learn", "z.tif", "keep.tif", "--size", "3", cwd=tmp_path)
    assert done.returncode != 0
    assert (tmp_path / "keep.tif").read_bytes() == b"existing"
    assert not (tmp_path / "keep.jpg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tif", "z.tif"]


def test_learn_refuses_pairs_of_different_page_counts(tmp_path):
    write_stack(tmp_path / "a.tif", np.stack(grey_frames(3)))
    write_stack(tmp_path / "b.tif", np.stack(grey_frames(2)))
    done = run("learn", "a.tif", "b.tif", "--size", "3", cwd=tmp_path)
    assert_one_error_line(done, "a.tif has 3 pages and b.tif 2", "page i")


def test_a_stack_larger_than_memory_goes_page_by_page_within_memory(tmp_path):
    """Pages that fit are filtered one at a time; pages that do not are each streamed in
    bands; either way every page is scipy's result for that page alone."""
    rng = np.random.default_rng(8)
    frames = [rng.integers(0, 256, (300, 400), dtype=np.uint8) for _ in range(3)]
    write_stack(tmp_path / "z.tif", np.stack(frames))
    for memory, banded in (("16M", False), ("1M", True)):
        out = tmp_path / f"out-{memory}.tif"
        args = ("apply", "z.tif", "-k", KERNEL, "--normalize", "--memory", memory, "-o", out.name)
        done = run(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert ("filtered in bands" in done.stderr) == banded, done.stderr
        with tifffile.TiffFile(out) as tif:
            assert_each_frame_filtered_alone(frames, [page.asarray() for page in tif.pages])
    done = run("apply", "z.tif", "-k", "box", "--memory", "1M", "-o", "z.npy", cwd=tmp_path)
    assert_one_error_line(done, "3 pages are filtered in bands", "write .tif")
    done = run(
        "apply",
        "z.tif",
        "-k",
        KERNEL,
        "--normalize",
        "--memory",
        "2M",
        "--page",
        "1",
        "-o",
        "one.tif",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert_each_frame_filtered_alone([frames[1]], [tifffile.imread(tmp_path / "one.tif")])


def test_a_grey_gif_into_an_animated_png_keeps_its_disposal(tmp_path):
    """Pillow cannot dispose grey APNG frames: they are written grey with an opaque alpha."""
    frames = grey_frames(3, seed=9)
    save_animation(
        tmp_path / "in.gif",
        frames,
        duration=DURATIONS[:3],
        disposal=[2, 3, 1],
    )
    ok("apply", tmp_path / "in.gif", "-k", KERNEL, "--normalize", "-o", tmp_path / "out.png")
    shown, durations, disposals, _ = frames_of(tmp_path / "out.png", "L")
    # the frames as shown: Pillow's GIF writer and reader disagree on a frame after a
    # "restore previous" one, and convtool filters what is shown
    assert_each_frame_filtered_alone(frames_of(tmp_path / "in.gif", "L")[0], shown)
    assert durations == DURATIONS[:3]
    assert disposals == [1, 2, 0]  # APNG's background, previous, none


def test_pages_of_different_sizes_go_to_tiff_not_to_an_animation(tmp_path):
    with tifffile.TiffWriter(tmp_path / "m.tif") as tif:
        tif.write(grey_frames(1)[0], photometric="minisblack")
        tif.write(grey_frames(1)[0][:5, :6], photometric="minisblack")
    ok("apply", tmp_path / "m.tif", "-k", "box", "-o", tmp_path / "o.tif")
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert [p.shape for p in tif.pages] == [(11, 14), (5, 6)]
    done = run("apply", "m.tif", "-k", "box", "-o", "o.gif", cwd=tmp_path)
    assert_one_error_line(done, "o.gif", "differ in size (14x11, 6x5)", "write .tif")
    assert not (tmp_path / "o.gif").exists()


def test_page_on_standard_input_is_refused(tmp_path):
    write_stack(tmp_path / "z.tif", np.stack(grey_frames(3)))
    with open(tmp_path / "z.tif", "rb") as stdin:
        done = subprocess.run(
            [*CONVTOOL, "apply", "-", "-k", "box", "--page", "1", "-o", "o.tif"],
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
    assert_one_error_line(done, "--page 1: standard input is read once", "by name")
    assert not (tmp_path / "o.tif").exists()


def test_pages_in_a_batch_and_on_standard_output(tmp_path):
    """A batch filters each paged input into its own container; ``-o -`` gets one too."""
    frames = grey_frames(3, seed=10)
    write_stack(tmp_path / "z.tif", np.stack(frames))
    Image.fromarray(frames[0]).save(tmp_path / "one.png")
    ok(
        "apply",
        tmp_path / "z.tif",
        tmp_path / "one.png",
        "-k",
        KERNEL,
        "--normalize",
        "--out-dir",
        tmp_path / "out",
    )
    with tifffile.TiffFile(tmp_path / "out" / "z.tif") as tif:
        assert_each_frame_filtered_alone(frames, [p.asarray() for p in tif.pages])
    with Image.open(tmp_path / "out" / "one.png") as im:
        assert_each_frame_filtered_alone(frames[:1], [np.asarray(im)])
    done = subprocess.run(
        [*CONVTOOL, "apply", "z.tif", "-k", KERNEL, "--normalize", "-o", "-"],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "piped.tif").write_bytes(done.stdout)
    with tifffile.TiffFile(tmp_path / "piped.tif") as tif:
        assert_each_frame_filtered_alone(frames, [p.asarray() for p in tif.pages])
