"""Hostile inputs (issue 16): endless sources, bombs past the memory budget, damaged JPEGs,
crafted kernel files. Each runs a real ``python -m convtool`` process under an address-space
limit, and must end in one ``convtool: error:`` line (or a note), quickly, writing nothing."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

CONVTOOL = [sys.executable, "-m", "convtool"]
ERROR = "convtool: error: "
TIMEOUT = 120
ADDRESS_SPACE = 3 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run(args: list[str], cwd: Path, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVTOOL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limited,
        check=False,
        **options,  # type: ignore[arg-type]
    )


def assert_one_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
    assert "Traceback" not in result.stderr and "this is a bug" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _rgb(seed: int, shape: tuple[int, int] = (300, 400)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _jpeg(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90, **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Endless and oversized sources


def test_a_device_of_endless_zeros_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    result = run(["apply", "/dev/zero", "-k", "box", "-o", "out.png"], tmp_path)
    assert_one_error(result, "/dev/zero", "neither an image nor a text matrix")
    assert not (tmp_path / "out.png").exists()


def _feed_forever(stream: io.BufferedWriter | None, line: bytes) -> None:
    assert stream is not None
    block = line * 65536
    try:
        while True:
            stream.write(block)
    except (BrokenPipeError, OSError, ValueError):
        pass


def test_endless_text_on_standard_input_ends_at_the_pixel_limit(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*CONVTOOL, "apply", "-", "-k", "box", "-o", "out.npy", "--max-pixels", "100000"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limited,
    )
    assert process.stdin is not None and process.stderr is not None
    feeder = threading.Thread(target=_feed_forever, args=(process.stdin, b"1\n"), daemon=True)
    feeder.start()
    try:
        process.wait(timeout=TIMEOUT)
        stderr = process.stderr.read().decode()
    finally:
        process.kill()
        feeder.join(timeout=10)
        with contextlib.suppress(OSError):
            process.stdin.close()
        process.stderr.close()
    result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
    assert_one_error(result, "standard input", "--max-pixels")
    assert not (tmp_path / "out.npy").exists()


def test_an_endless_fifo_is_read_within_its_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "in.txt.fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as stream:
            _feed_forever(stream, b"1 2 3 4\n")  # type: ignore[arg-type]

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = run(
        ["apply", fifo.name, "-k", "box", "-o", "out.npy", "--max-pixels", "100000"], tmp_path
    )
    thread.join(timeout=10)
    assert_one_error(result, fifo.name, "--max-pixels")


def test_an_endless_kernel_source_is_refused(tmp_path: Path) -> None:
    Image.fromarray(_rgb(1, (8, 8))).save(tmp_path / "in.png")
    result = run(["apply", "in.png", "-k", "@/dev/zero", "-o", "out.png"], tmp_path)
    assert_one_error(result, "/dev/zero", "MiB")
    assert not (tmp_path / "out.png").exists()


def test_a_kernel_file_larger_than_any_kernel_needs_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    with open(tmp_path / "k.txt", "wb") as big:
        big.truncate(100 << 20)  # sparse: its size alone refuses it
    result = run(["kernels", "@k.txt"], tmp_path)
    assert_one_error(result, "k.txt", "MiB", ".npy")


def _constant_png(side: int) -> bytes:
    """A side x side grey PNG of zeros, a few hundred KB on disk."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


@pytest.mark.slow
def test_the_memory_budget_holds_for_a_png_past_pillows_own_limit(tmp_path: Path) -> None:
    (tmp_path / "z20k.png").write_bytes(_constant_png(20000))
    result = run(
        [
            *("apply", "z20k.png", "-k", "gaussian:2", "-o", "out.png"),
            *("--max-pixels", "1000000000", "--memory", "64M"),
        ],
        tmp_path,
    )
    assert_one_error(result, "z20k.png", "--memory", "20000x20000")
    assert not (tmp_path / "out.png").exists()


def test_an_npy_header_past_numpys_limit_is_one_line(tmp_path: Path) -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }" + " " * 12000 + "\n"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    (tmp_path / "big.npy").write_bytes(raw + np.zeros(9).tobytes())
    result = run(["apply", "big.npy", "-k", "box", "-o", "out.npy"], tmp_path)
    assert_one_error(result, "big.npy", "header")
    assert "allow_pickle" not in result.stderr


# --------------------------------------------------------------------------------------------
# Damaged JPEGs and TIFFs


def test_a_cut_baseline_jpeg_is_refused(tmp_path: Path) -> None:
    data = _jpeg(_rgb(2))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3] + b"\xff\xd9")
    result = run(["apply", "cut.jpg", "-k", "box", "-o", "out.png"], tmp_path)
    assert_one_error(result, "cut.jpg", "premature end")
    assert not (tmp_path / "out.png").exists()


def test_a_cut_progressive_jpeg_is_refused(tmp_path: Path) -> None:
    data = _jpeg(_rgb(3), progressive=True)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3] + b"\xff\xd9")
    result = run(["apply", "cut.jpg", "-k", "box", "-o", "out.png"], tmp_path)
    assert_one_error(result, "cut.jpg", "premature end")


def test_a_tiny_jpeg_claiming_a_huge_frame_is_refused_before_decoding(tmp_path: Path) -> None:
    data = bytearray(_jpeg(_rgb(4)))
    frame = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, 9999, 10000)
    (tmp_path / "claim.jpg").write_bytes(bytes(data[:631]) + b"\xff\xd9")
    result = run(["apply", "claim.jpg", "-k", "box", "-o", "out.png"], tmp_path)
    assert_one_error(result, "claim.jpg", "10000x9999")


@pytest.mark.parametrize("progressive", [False, True])
def test_complete_jpegs_with_flat_grey_bottoms_are_filtered(
    tmp_path: Path, progressive: bool
) -> None:
    picture = _rgb(5, (64, 80))
    picture[-24:] = 128  # flat grey, as a cut file would decode, but complete
    (tmp_path / "in.jpg").write_bytes(_jpeg(picture, progressive=progressive))
    result = run(["apply", "in.jpg", "-k", "box", "-o", "out.png"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png").exists()


def test_a_tiled_tiff_without_its_tiles_is_noted(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "t.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), tile=(16, 16)
    )
    raw = bytearray((tmp_path / "t.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "t.tif") as tif:
        tags = tif.pages.first.tags
        for tag in (tags["TileOffsets"], tags["TileByteCounts"]):
            size = {3: 2, 4: 4, 16: 8}[int(tag.dtype)]
            for i in range(tag.count):
                struct.pack_into(
                    {2: "<H", 4: "<I", 8: "<Q"}[size], raw, tag.valueoffset + i * size, 0
                )
    (tmp_path / "t.tif").write_bytes(bytes(raw))
    result = run(["apply", "t.tif", "-k", "box", "-o", "out.tif"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "16 of the TIFF's 16 strips or tiles are missing" in result.stderr


# --------------------------------------------------------------------------------------------
# Crafted kernel files


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("s.json", '[["1"]]', ['"1"', "not a number"]),
        ("b.json", "[[true, false]]", ["true", "not a number"]),
        ("n.json", "[[1, null]]", ["null", "not a number"]),
        ("d.json", '{"kernel": [[1]], "kernel": [[2]]}', ["'kernel'", "twice"]),
        ("u.json", '{"kernel": [[1]], "bais": 2}', ["'bais'", "unknown key"]),
        ("deep.json", "[" * 1000 + "]" * 1000, ["nested"]),
        ("wide.json", "[[" + "9" * 5000 + "]]", ["finite"]),
        ("arabic.txt", "\u0661 2", ["'\u0661'", "not a number"]),
        ("fullwidth.txt", "\uff11 2", ["'\uff11'", "not a number"]),
    ],
)
def test_crafted_kernel_files_are_refused_naming_what_came_in(
    tmp_path: Path, name: str, text: str, words: list[str]
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = run(["kernels", f"@{name}"], tmp_path)
    assert_one_error(result, name, *words)


def test_unicode_digits_are_refused_inline_too(tmp_path: Path) -> None:
    result = run(["kernels", "\u0661 2"], tmp_path)
    assert_one_error(result, "not a number")


@pytest.mark.parametrize("via", ["stdin", "fifo"])
def test_the_memory_budget_holds_for_an_image_read_from_a_stream(tmp_path: Path, via: str) -> None:
    """A stream is read whole: its header is checked against --memory before decoding."""
    png = _constant_png(4000)  # 4000^2 grey: about 244 MiB in memory, against 16 MiB
    args = ["apply", "-", "-k", "box", "-o", "out.png", "--memory", "16M"]
    if via == "stdin":
        result = run(args, tmp_path, input=png.decode("latin-1"), encoding="latin-1")
    else:
        fifo = tmp_path / "in.png"
        os.mkfifo(fifo)

        def writer() -> None:
            with open(fifo, "wb") as stream, contextlib.suppress(BrokenPipeError):
                stream.write(png)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        result = run([*args[:1], "in.png", *args[2:]], tmp_path)
        thread.join(timeout=10)
    name = "standard input" if via == "stdin" else "in.png"
    assert_one_error(result, name, "4000x4000", "--memory", "a stream is read whole")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("subsampling", [0, 2])
@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_a_baseline_jpeg_cut_in_its_last_rows_is_refused(
    tmp_path: Path, subsampling: int, kept: float
) -> None:
    """Cut in the last block rows, only part of the bottom is grey (once, not a flat band)."""
    data = _jpeg(_rgb(6, (150, 200)), subsampling=subsampling)
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * kept)] + b"\xff\xd9")
    result = run(["apply", "cut.jpg", "-k", "box", "-o", "out.png"], tmp_path)
    assert_one_error(result, "cut.jpg", "premature end")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("option", ["--max-pixels", "--threads", "--quality"])
def test_an_integer_option_past_pythons_digit_limit_is_one_clear_error(
    tmp_path: Path, option: str
) -> None:
    Image.fromarray(_rgb(7, (8, 8))).save(tmp_path / "in.png")
    result = run(["apply", "in.png", "-k", "box", "-o", "out.jpg", option, "9" * 5000], tmp_path)
    assert result.returncode != 0 and "this is a bug" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR) and option in lines[0], result.stderr
    assert not (tmp_path / "out.jpg").exists()


def _one_gib() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize(
    ("row", "rows", "words"),
    [("1\n", 20_000_000, "more than 1025 rows"), ("1 " * 5000 + "\n", 1000, "5000 numbers")],
)
def test_a_text_kernel_larger_than_any_kernel_is_refused_from_its_first_rows(
    tmp_path: Path, row: str, rows: int, words: str
) -> None:
    """Under the source's byte cap, yet no kernel: refused without parsing it whole (it took
    gigabytes)."""
    (tmp_path / "k.txt").write_text(row * rows)
    result = subprocess.run(
        [*CONVTOOL, "kernels", "@k.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_one_gib,
        check=False,
    )
    assert_one_error(result, "k.txt", words, "1025")


@pytest.mark.parametrize(
    "text",
    ["[[" + ",".join(["1"] * 25_000_000) + "]]", "[" + ",".join(["[1]"] * 8_000_000) + "]"],
    ids=["wide", "tall"],
)
def test_a_json_kernel_larger_than_any_kernel_is_refused_before_parsing(
    tmp_path: Path, text: str
) -> None:
    """Under the source's byte cap, yet no kernel: refused before json builds its lists (a
    1 GiB address space did not hold them)."""
    (tmp_path / "k.json").write_text(text)
    result = subprocess.run(
        [*CONVTOOL, "kernels", "@k.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_one_gib,
        check=False,
    )
    assert_one_error(result, "k.json", "more than 1025 numbers or rows")
