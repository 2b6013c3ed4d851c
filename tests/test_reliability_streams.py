"""convtool started with a standard stream closed (``2>&-``, ``>&-``, ``<&-``).

Python then sets ``sys.stderr`` (etc.) to None; convtool used to raise AttributeError on the
first note, error line or final flush: a traceback, exit 1, a batch that wrote nothing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

CONVTOOL = [sys.executable, "-m", "convtool"]
TIMEOUT = 120


def run_closed(args: list[str], redirect: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``convtool ARGS REDIRECT`` through bash (e.g. ``2>&-``); stdout/stderr captured unless
    the redirection closes them."""
    command = " ".join(shlex.quote(a) for a in [*CONVTOOL, *args])
    return subprocess.run(
        ["bash", "-c", f"exec {command} {redirect}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def grey(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(20, 30), dtype=np.uint8)


def box3(stored: np.ndarray) -> np.ndarray:
    """What ``-k box:3`` (reflect) stores for 8-bit grey ``stored``: scipy.ndimage's result."""
    unit = stored.astype(np.float64) / 255.0
    return np.rint(ndimage.correlate(unit, np.full((3, 3), 1 / 9), mode="reflect") * 255)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.float64)


def test_batch_with_stderr_closed_writes_every_good_input(tmp_path):
    """``2>&-``: the error lines go nowhere, as asked; every good file is written, exit 1."""
    sources = {f"f{i}.png": grey(i) for i in range(5)}
    for name, stored in sources.items():
        Image.fromarray(stored).save(tmp_path / name)
    (tmp_path / "f2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    del sources["f2.png"]
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    done = run_closed(["apply", *names, "-k", "box:3", "--out-dir", "out"], "2>&-", tmp_path)
    assert done.returncode == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(sources)
    for name, stored in sources.items():
        assert np.abs(pixels(tmp_path / "out" / name) - box3(stored)).max() <= 1


def test_single_file_with_stderr_closed_exits_0(tmp_path):
    Image.fromarray(grey(7)).save(tmp_path / "in.png")
    done = run_closed(["apply", "in.png", "-k", "box:3", "-o", "out.png"], "2>&-", tmp_path)
    assert done.returncode == 0, done.stdout
    assert np.abs(pixels(tmp_path / "out.png") - box3(grey(7))).max() <= 1


def test_stdout_closed_with_an_output_file_exits_0(tmp_path):
    Image.fromarray(grey(8)).save(tmp_path / "in.png")
    done = run_closed(["apply", "in.png", "-k", "box:3", "-o", "out.png"], ">&-", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert np.abs(pixels(tmp_path / "out.png") - box3(grey(8))).max() <= 1


def test_result_sent_to_a_closed_stdout_is_one_error_line(tmp_path):
    """``-o -`` with stdout closed: what writing to a closed descriptor gives, not silence."""
    Image.fromarray(grey(9)).save(tmp_path / "in.png")
    for args in (["-o", "-"], []):
        done = run_closed(["apply", "in.png", "-k", "box:3", *args], ">&-", tmp_path)
        assert done.returncode == 1
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith("convtool: error: ") and "Bad file descriptor" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_closed_stdin_reads_as_empty(tmp_path):
    done = run_closed(["apply", "-", "-k", "box:3", "-o", "out.png"], "<&-", tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "convtool: error: standard input: is empty; pipe an image or a text matrix into it\n"
    )
    assert not (tmp_path / "out.png").exists()


def test_kernels_listing_to_a_closed_stdout(tmp_path):
    done = run_closed(["kernels"], ">&-", tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("convtool: error: ") and "Traceback" not in done.stderr


def test_batch_whose_stderr_reader_has_gone_writes_every_good_input(tmp_path):
    """``2>&1 | head -c 5``: stderr is a pipe nobody reads any more (its read end closed
    before convtool starts, so the first error line meets EPIPE). The lines are dropped, the
    batch carries on: every good file is written, exit 1 for the broken ones."""
    sources = {f"f{i}.png": grey(10 + i) for i in range(6)}
    for name, stored in sources.items():
        Image.fromarray(stored).save(tmp_path / name)
    for broken in ("f0.png", "f3.png"):
        (tmp_path / broken).write_bytes(b"not an image at all")
        del sources[broken]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*CONVTOOL, "apply", *(f"f{i}.png" for i in range(6)), "-k", "box:3",
             "--out-dir", "out"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=write_end,
            timeout=TIMEOUT,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 1 and done.stdout == b""
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(sources)
    for name, stored in sources.items():
        assert np.abs(pixels(tmp_path / "out" / name) - box3(stored)).max() <= 1
