"""Reliability (issue 6): every bad input gets one clear error line, and nothing is ever lost.

Run the way a shell script runs convtool: real ``python -m convtool`` processes on real files.
The table of failures runs its processes side by side (a module fixture starts the rows that
were selected) and checks each one the same way: exactly one ``convtool: error:`` line naming
the reason, exit code 1 (2 for usage errors), no traceback, nothing on standard output, and the
case's whole directory byte for byte as it was — so no partial output, no temporary file, and
the existing output file untouched.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from convtool.errors import ImageError, KernelError
from convtool.io.matrix import parse_matrix
from convtool.io.read import DEFAULT_MAX_PIXELS, read_picture
from convtool.kernels.builtins import LAPLACIAN
from convtool.kernels.spec import load_kernel
from convtool.kernels.value import MAX_KERNEL_SIDE

from conftest import writing_into

CONVTOOL = [sys.executable, "-m", "convtool"]
TIMEOUT = 120
ERROR = "convtool: error: "

# --------------------------------------------------------------------------------------------
# Inputs


def _grey(seed: int, shape: tuple[int, ...] = (12, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _png_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 100-byte PNG whose IHDR (correct CRC) claims width × height 8-bit grey pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version 1.0 .npy header for ``shape`` (no data)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


class _MkdirWhenUnpickled:
    """Pickles as ``os.mkdir(path)``: a .npy holding it proves nobody unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.mkdir, (self.path,))


def tiff_with_orientation_pair() -> bytes:
    """A TIFF whose Orientation tag holds two values instead of one (a damaged tag)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, _grey(3), extratags=[(274, "H", 2, (1, 1), True)])
    return buffer.getvalue()


def tiff_with_bad_tag_type() -> bytes:
    """A TIFF whose Compression tag has the unknown field type 26 (tifffile logs about it)."""
    data = bytearray(_tiff_bytes(_grey(4)))
    ifd = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 259:
            data[entry + 2 : entry + 4] = struct.pack("<H", 26)
            return bytes(data)
    raise AssertionError("no Compression tag written")


def _tiff_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _nan_target() -> np.ndarray:
    target = np.full((12, 16), 0.5)
    target[4, 5] = np.nan
    return target


# --------------------------------------------------------------------------------------------
# Dropping privileges: root ignores file permissions


_PROBE = """
import sys
import convtool.cli
try:
    open(sys.argv[1]).close()
except PermissionError:
    sys.exit(0)
sys.exit(3)
"""


@dataclass(frozen=True)
class Unprivileged:
    prefix: tuple[str, ...] | None
    how: str


_unprivileged: list[Unprivileged] = []


def unprivileged() -> Unprivileged:
    """A command prefix under which file permissions apply, found by trying (cached).

    Already not root: nothing to do. As root: the user nobody (setpriv, then runuser) when it
    can run convtool from where it is installed; else root without the two capabilities that
    bypass permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), which still reads the
    installation but obeys a file's mode bits like any user. Each is checked on a mode 000 file.
    """
    if _unprivileged:
        return _unprivileged[0]
    if os.geteuid() != 0:
        _unprivileged.append(Unprivileged((), f"uid {os.geteuid()}"))
        return _unprivileged[0]
    candidates = [
        ("user nobody (setpriv)", ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")),
        ("user nobody (runuser)", ("runuser", "-u", "nobody", "--")),
        (
            "root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv)",
            ("setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"),
        ),
    ]
    tried = []
    probe_dir = Path(tempfile.mkdtemp(prefix="convtool-probe-"))
    try:
        probe_dir.chmod(0o755)
        secret = probe_dir / "secret"
        secret.write_text("x")
        secret.chmod(0)
        for label, prefix in candidates:
            if shutil.which(prefix[0]) is None:
                tried.append(f"{label}: {prefix[0]} is not installed")
                continue
            done = subprocess.run(
                [*prefix, sys.executable, "-c", _PROBE, str(secret)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            if done.returncode == 0:
                _unprivileged.append(Unprivileged(prefix, label))
                return _unprivileged[0]
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            tried.append(f"{label}: {last}")
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    _unprivileged.append(Unprivileged(None, "no way to drop privileges: " + "; ".join(tried)))
    return _unprivileged[0]


# --------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Case:
    """One failure: the command (run in the case's directory), what the error line must say."""

    id: str
    args: tuple[str, ...]
    reason: str  # a regular expression the error line must match
    code: int = 1
    files: dict[str, bytes | Callable[[Path], object]] = field(default_factory=dict)
    stdin: bytes = b""
    stdout: str | None = None  # a path to send standard output to, e.g. /dev/full
    unprivileged: bool = False
    address_space: int | None = None  # ulimit -v, in KiB
    tmpfs: str | None = None  # a directory to mount a 64 KiB tmpfs on
    not_reason: str | None = None  # a regular expression the error line must not match


def apply(*args: str) -> tuple[str, ...]:
    return ("apply", *args)


def learn(*args: str) -> tuple[str, ...]:
    return ("learn", *args)


TO_OLD = ("-o", "out/old.png")  # an existing output: it must survive every failure untouched
KERNEL = ("-k", "box:3")
PNG = _png_bytes(_grey(1))
JPEG = _jpeg_bytes(np.dstack([_grey(2)] * 3))
WIDE = " ".join(["1"] * (MAX_KERNEL_SIDE + 1))


def _mkdir(mode: int = 0o755) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        path.mkdir()
        (path / "keep.png").write_bytes(PNG)
        path.chmod(mode)

    return make


def _mode(data: bytes, mode: int) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        path.write_bytes(data)
        path.chmod(mode)

    return make


def _object_npy(path: Path) -> None:
    marker = path.parent / "UNPICKLED"  # would appear in the directory's snapshot
    path.write_bytes(_npy_bytes(np.array([_MkdirWhenUnpickled(marker)], dtype=object), True))


CASES = [
    # Inputs ------------------------------------------------------------------------------
    Case("input-missing", apply("nope.png", *KERNEL, *TO_OLD), r"nope\.png: no such file"),
    Case(
        "input-directory",
        apply("adir", *KERNEL, *TO_OLD),
        r"a directory's images need --out-dir DIR",  # a directory stands for its images
        code=2,
        files={"adir": _mkdir()},
    ),
    Case(
        "input-empty",
        apply("empty.png", *KERNEL, *TO_OLD),
        r"empty\.png: is empty \(0 bytes\)",
        files={"empty.png": b""},
    ),
    Case(
        "input-random-bytes-png",
        apply("noise.png", *KERNEL, *TO_OLD),
        r"noise\.png: not an image Pillow can read",
        files={"noise.png": np.random.default_rng(0).bytes(500)},
    ),
    Case(
        "input-truncated-png",
        apply("cut.png", *KERNEL, *TO_OLD),
        r"cut\.png: broken or truncated PNG",
        files={"cut.png": PNG[: len(PNG) // 2]},
    ),
    Case(
        "input-truncated-jpeg",
        apply("cut.jpg", *KERNEL, *TO_OLD),
        r"cut\.jpg: .*(truncated|Truncated)",
        files={"cut.jpg": JPEG[: len(JPEG) // 2]},
    ),
    Case(
        "input-text-not-a-matrix",
        apply("words.txt", *KERNEL, *TO_OLD),
        r"words\.txt: not a matrix of numbers .*'hello'",
        files={"words.txt": b"hello world\nfoo bar\n"},
    ),
    Case(
        "input-ragged-matrix",
        apply("ragged.txt", *KERNEL, *TO_OLD),
        r"ragged\.txt: .*ragged rows \(row 1 has 3 entries, row 2 has 2\)",
        files={"ragged.txt": b"1 2 3\n4 5\n"},
    ),
    Case(
        "input-npy-4-dimensions",
        apply("four.npy", *KERNEL, *TO_OLD),
        r"four\.npy: a matrix of shape \(2, 3, 4, 5\); .*2-D",
        files={"four.npy": _npy_bytes(np.zeros((2, 3, 4, 5)))},
    ),
    Case(
        "input-npy-object-never-unpickled",
        apply("objects.npy", *KERNEL, *TO_OLD),
        r"objects\.npy: holds Python objects, which convtool never unpickles",
        files={"objects.npy": _object_npy},
    ),
    Case(
        "input-npy-shape-0x5",
        apply("hollow.npy", *KERNEL, *TO_OLD),
        r"hollow\.npy: a matrix of shape \(0, 5\); convtool needs a non-empty",
        files={"hollow.npy": _npy_bytes(np.zeros((0, 5)))},
    ),
    Case(
        "input-npy-shorter-than-its-header",
        apply("short.npy", *KERNEL, *TO_OLD),
        r"short\.npy: truncated \.npy file: its header promises 9,600 bytes",
        files={"short.npy": _npy_bytes(np.ones((30, 40)))[:500]},
    ),
    Case(
        "input-png-bomb",
        apply("bomb.png", *KERNEL, *TO_OLD),
        r"bomb\.png: 100000x100000 is 10,000,000,000 pixels, more than the limit of "
        r"100,000,000 .*--max-pixels 10000000000",
        files={"bomb.png": png_bomb()},
    ),
    Case(
        "input-png-bomb-allowed-by-max-pixels",
        apply("bomb.png", *KERNEL, *TO_OLD, "--max-pixels", "10000000000"),
        r"bomb\.png: a 100000x100000 PNG image needs about .* in memory, more than",
        files={"bomb.png": png_bomb()},
        not_reason="limit",
    ),
    Case(
        "input-png-bomb-allowed-in-2-GiB",
        apply("bomb.png", *KERNEL, *TO_OLD, "--max-pixels", "10000000000"),
        r"bomb\.png: (not enough memory to read it|a 100000x100000 PNG image needs about)",
        files={"bomb.png": png_bomb()},
        address_space=2 * 1024 * 1024,
    ),
    Case(
        "input-npy-bomb",
        apply("huge.npy", *KERNEL, *TO_OLD),
        r"huge\.npy: 100000x100000 is 10,000,000,000 pixels, more than the limit",
        files={"huge.npy": npy_header((100_000, 100_000)) + b"\0" * 64},
    ),
    Case(
        "input-tiff-damaged-tag",
        apply("damaged.tif", *KERNEL, *TO_OLD),
        r"damaged\.tif: cannot be read; the file is damaged",
        files={"damaged.tif": tiff_with_orientation_pair()},
    ),
    Case(
        "input-stdin-empty",
        apply("-", *KERNEL, *TO_OLD),
        r"standard input: is empty",
    ),
    Case(
        "input-stdin-random-bytes",
        apply("-", *KERNEL, *TO_OLD),
        r"standard input: neither an image Pillow reads nor a text matrix",
        stdin=b"\xff\xfe\x00garbage" + np.random.default_rng(1).bytes(300),
    ),
    Case(
        "input-unreadable",
        apply("secret.png", *KERNEL, *TO_OLD),
        r"secret\.png: permission denied",
        files={"secret.png": _mode(PNG, 0o000)},
        unprivileged=True,
    ),
    Case(
        "input-output-in-place-failing",
        apply("x.png", "-k", "box:99", "--border", "valid", "-o", "x.png"),
        r"kernel 99x99 is larger than the 12x16 image",
    ),
    # Kernels -----------------------------------------------------------------------------
    Case("kernel-nan", apply("x.png", "-k", "1 nan", *TO_OLD), r"NaN or infinite entries"),
    Case("kernel-infinity", apply("x.png", "-k", "1 0; 0 -inf", *TO_OLD), r"NaN or infinite"),
    Case("kernel-empty", apply("x.png", "-k", "", *TO_OLD), r"empty kernel spec"),
    Case("kernel-empty-json", apply("x.png", "-k", "[]", *TO_OLD), r"is empty \(shape"),
    Case(
        "kernel-empty-file",
        apply("x.png", "-k", "@k.txt", *TO_OLD),
        r"kernel file 'k\.txt': no numbers found",
        files={"k.txt": b"# nothing here\n"},
    ),
    Case("kernel-ragged", apply("x.png", "-k", "1 2; 3", *TO_OLD), r"ragged rows \(lengths"),
    Case("kernel-5d", apply("x.png", "-k", "[[[[[1]]]]]", *TO_OLD), r"nested more than 4 deep"),
    Case(
        "kernel-3d-npy-channels",
        apply("x.png", "-k", "@k.npy", *TO_OLD),
        r"2 per-channel 2x2 kernels take 2 input channels; x\.png has 1: use a layer with 1 "
        "input, or an image with 2",
        files={"k.npy": _npy_bytes(np.ones((2, 2, 2)))},
    ),
    Case(
        "kernel-5d-npy",
        apply("x.png", "-k", "@k.npy", *TO_OLD),
        r"kernel file 'k\.npy': has 5 dimensions, shape \(1, 1, 1, 1, 1\)",
        files={"k.npy": _npy_bytes(np.ones((1, 1, 1, 1, 1)))},
    ),
    Case(
        "kernel-over-the-side-limit",
        apply("x.png", "-k", WIDE, *TO_OLD),
        rf"\(2051 characters\): line 1 holds {MAX_KERNEL_SIDE + 1} numbers; the largest "
        rf"kernel side convtool accepts is {MAX_KERNEL_SIDE}",
    ),
    Case(
        "kernel-builtin-over-the-limit",
        apply("x.png", "-k", f"box:{MAX_KERNEL_SIDE + 1}", *TO_OLD),
        rf"size {MAX_KERNEL_SIDE + 1} is larger than the limit {MAX_KERNEL_SIDE}",
    ),
    Case(
        "kernel-npy-header-over-the-limit",
        apply("x.png", "-k", "@big.npy", *TO_OLD),
        rf"kernel file 'big\.npy': is 100000x100000; the largest kernel side .* "
        rf"{MAX_KERNEL_SIDE}",
        files={"big.npy": npy_header((100_000, 100_000)) + b"\0" * 64},
    ),
    Case(
        "kernel-sigma-overflows",
        apply("x.png", "-k", "gaussian:1e308", *TO_OLD),
        r"gaussian: sigma 1e\+308 needs a kernel larger than the limit",
    ),
    Case(
        "kernel-weights-overflow",
        apply("x.png", "-k", "1e308 1e308", *TO_OLD),
        r"magnitudes sum to inf",
    ),
    Case(
        "kernel-larger-than-image-valid",
        apply("x.png", "-k", "box:25", "--border", "valid", *TO_OLD),
        r"kernel 25x25 is larger than the 12x16 image; border 'valid' needs",
    ),
    Case(
        "kernel-file-missing",
        apply("x.png", "-k", "@missing.txt", *TO_OLD),
        r"kernel file 'missing\.txt': no such file",
    ),
    Case(
        "kernel-file-unreadable",
        apply("x.png", "-k", "@secret.txt", *TO_OLD),
        r"kernel file 'secret\.txt': cannot be read \(Permission denied\)",
        files={"secret.txt": _mode(b"1 1\n1 1\n", 0o000)},
        unprivileged=True,
    ),
    # Outputs -----------------------------------------------------------------------------
    Case(
        "output-directory-missing",
        apply("x.png", *KERNEL, "-o", "missing/y.png"),
        r"missing/y\.png: directory 'missing' does not exist; create it first",
    ),
    Case(
        "output-read-only-directory",
        apply("x.png", *KERNEL, "-o", "locked/keep.png"),
        r"locked/keep\.png: cannot be written \(Permission denied\)",
        files={"locked": _mkdir(0o555)},
        unprivileged=True,
    ),
    Case(
        "output-is-a-directory",
        apply("x.png", *KERNEL, "-o", "out"),
        r"out: is a directory; give a file name for the output",
    ),
    Case(
        "output-directory-with-an-extension",
        apply("x.png", *KERNEL, "-o", "dir.png"),
        r"dir\.png: is a directory",
        files={"dir.png": _mkdir()},
    ),
    Case(
        "output-unknown-extension",
        apply("x.png", *KERNEL, "-o", "out/y.xyz"),
        r"cannot tell the output format from 'out/y\.xyz'",
        code=2,
    ),
    Case(
        "output-full-disk-stdout",
        apply("x.png", *KERNEL, "-o", "-"),
        r"standard output: cannot be written \(No space left on device\)",
        stdout="/dev/full",
    ),
    Case(
        "output-full-disk-file",
        apply("wide.png", "-k", "identity", "-o", "full/keep.png"),
        r"full/keep\.png: cannot be written \(No space left on device\)",
        files={"wide.png": lambda p: p.write_bytes(_png_bytes(_grey(9, (300, 300, 3))))},
        tmpfs="full",
    ),
    Case(
        "output-full-disk-kernels-listing",
        ("kernels",),
        r"cannot write the output \(No space left on device\)",
        stdout="/dev/full",
    ),
    # learn -------------------------------------------------------------------------------
    Case(
        "learn-mismatched-shapes",
        learn("x.png", "small.png", "--size", "3", "-o", "out/old.txt"),
        r"small\.png is 5x7 but x\.png is 12x16: with a 3x3 kernel the target must be 12x16",
        files={"small.png": _png_bytes(_grey(5, (5, 7)))},
    ),
    Case(
        "learn-nan-in-npy-target",
        learn("x.npy", "t.npy", "--size", "3", "-o", "out/old.txt"),
        r"t\.npy: holds NaN or infinity",
        files={"x.npy": _npy_bytes(_grey(6) / 255.0), "t.npy": _npy_bytes(_nan_target())},
    ),
    Case(
        "learn-nan-in-float-tiff-target",
        learn("x.png", "t.tif", "--size", "3", "-o", "out/old.txt"),
        r"t\.tif has NaN or infinite values",
        files={"t.tif": _tiff_bytes(_nan_target().astype(np.float32))},
    ),
    Case(
        "learn-kernel-larger-than-images",
        learn("x.png", "x.png", "--size", "13x3", "-o", "out/old.txt"),
        r"the 13x3 kernel is larger than x\.png \(12x16\)",
    ),
    Case(
        "learn-damaged-input",
        learn("cut.png", "x.png", "--size", "3", "-o", "out/old.txt"),
        r"cut\.png: broken or truncated PNG",
        files={"cut.png": PNG[: len(PNG) // 2]},
    ),
    Case(
        "learn-full-disk-stdout",
        learn("x.png", "x.png", "--size", "3"),
        r"standard output: cannot be written \(No space left on device\)",
        stdout="/dev/full",
    ),
    # Options -----------------------------------------------------------------------------
    Case("option-depth-7", apply("x.png", *KERNEL, *TO_OLD, "--depth", "7"), r"'7' is not one", 2),
    Case(
        "option-threads-0",
        apply("x.png", *KERNEL, *TO_OLD, "--threads", "0"),
        r"--threads.*greater than or equal to 1",
        2,
    ),
    Case(
        "option-quality-101",
        apply("x.png", *KERNEL, "-o", "out/old.jpg", "--quality", "101"),
        r"--quality.*less than or equal to 100",
        2,
    ),
    Case(
        "option-compress-level-10",
        apply("x.png", *KERNEL, *TO_OLD, "--compress-level", "10"),
        r"--compress-level.*less than or equal to 9",
        2,
    ),
    Case(
        "option-max-pixels-0",
        apply("x.png", *KERNEL, *TO_OLD, "--max-pixels", "0"),
        r"--max-pixels.*greater than or equal to 1",
        2,
    ),
    Case("option-cval-nan", apply("x.png", *KERNEL, *TO_OLD, "--cval", "nan"), r"--cval must", 2),
    Case(
        "option-map-none-on-8-bit",
        apply("x.png", *KERNEL, *TO_OLD, "--map", "none"),
        r"--map none keeps raw values, which only a float output holds",
        2,
    ),
    Case(
        "option-size-0x3",
        learn("x.png", "x.png", "--size", "0x3", "-o", "out/old.txt"),
        r"kernel size 0x3: both sides must be at least 1",
        2,
    ),
    Case(
        "option-epochs-0",
        learn("x.png", "x.png", "--size", "3", "--method", "gd", "--epochs", "0"),
        r"--epochs must be a whole number ≥ 1; got 0",
        2,
    ),
    Case(
        "option-output-with-out-dir",
        apply("x.png", *KERNEL, *TO_OLD, "--out-dir", "elsewhere"),
        r"-o out/old\.png names one output file and --out-dir elsewhere a directory",
        2,
    ),
    Case(
        "option-stdout-with-out-dir",
        apply("x.png", *KERNEL, "-o", "-", "--out-dir", "out"),
        r"-o - writes to standard output; it cannot be combined with --out-dir",
        2,
    ),
    Case(
        "option-batch-without-destination",
        apply("x.png", "x2.png", *KERNEL, *TO_OLD),
        r"several inputs need --out-dir DIR or an -o template",
        2,
        files={"x2.png": PNG},
    ),
    Case(
        "option-unknown",
        apply("x.png", *KERNEL, *TO_OLD, "--sharpness", "3"),
        r"No such option: --sharpness",
        2,
    ),
]


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: str
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]
    skip: str | None = None


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``root``."""
    return {str(p.relative_to(root)): _content(p) for p in sorted(root.rglob("*"))}


def _content(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    try:
        return path.read_bytes()
    except PermissionError:  # a mode 000 file when the tests do not run as root
        info = path.stat()
        return f"unreadable {info.st_size} {info.st_mtime_ns} {info.st_mode}".encode()


def _populate(case: Case, home: Path) -> str | None:
    """Write the case's files; None, or why the case cannot run here."""
    home.mkdir()
    home.chmod(0o755)
    (home / "x.png").write_bytes(PNG)
    (home / "out").mkdir()
    (home / "out" / "old.png").write_bytes(_png_bytes(_grey(7)))
    (home / "out" / "old.txt").write_bytes(b"# an existing kernel file\n1 2\n3 4\n")
    (home / "out" / "old.jpg").write_bytes(JPEG)
    if case.tmpfs is not None:
        mount = home / case.tmpfs
        mount.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return f"cannot mount a 64 KiB tmpfs to fill: {done.stderr.strip() or done.returncode}"
        (mount / "keep.png").write_bytes(PNG)
    for name, content in case.files.items():
        path = home / name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
    if case.unprivileged and unprivileged().prefix is None:
        return unprivileged().how
    return None


def _command(case: Case) -> list[str]:
    command = [*CONVTOOL, *case.args]
    if case.unprivileged:
        prefix = unprivileged().prefix
        assert prefix is not None
        command = [*prefix, *command]
    if case.address_space is not None:
        command = ["bash", "-c", f'ulimit -v {case.address_space} && exec "$@"', "bash", *command]
    return command


def _environment(case: Case, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONVTOOL_DEBUG"}
    if case.unprivileged and "--reuid=65534" in (unprivileged().prefix or ()):
        env["NUMBA_CACHE_DIR"] = str(home.parent / "numba-cache")  # another user: a cache it owns
    return env


def run_case(case: Case, home: Path) -> Outcome:
    reason = _populate(case, home)
    before = snapshot(home)
    if reason is not None:
        return Outcome(0, b"", "", before, before, skip=reason)
    stdout_file = open(case.stdout, "wb") if case.stdout else None  # noqa: SIM115
    try:
        done = subprocess.run(
            _command(case),
            cwd=home,
            input=case.stdin,
            stdout=stdout_file or subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(case, home),
            timeout=TIMEOUT,
        )
    finally:
        if stdout_file is not None:
            stdout_file.close()
    return Outcome(
        done.returncode, done.stdout or b"", done.stderr.decode(), before, snapshot(home)
    )


@pytest.fixture(scope="module")
def table(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Outcome]]]:
    """Start every selected row of the table at once (a few processes at a time)."""
    wanted = {
        item.callspec.params["case"].id
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_fails_cleanly" and hasattr(item, "callspec")
    }
    base = Path(tempfile.mkdtemp(prefix="convtool-reliability-"))
    base.chmod(0o755)
    (base / "numba-cache").mkdir(mode=0o777)
    (base / "numba-cache").chmod(0o777)
    homes = {case.id: base / case.id for case in CASES if case.id in wanted}
    for case in CASES:
        if case.unprivileged and case.id in wanted:
            unprivileged()  # find it once, before the threads
    pool = ThreadPoolExecutor(max_workers=max(2, min(6, (os.cpu_count() or 2) * 2)))
    futures = {
        case.id: pool.submit(run_case, case, homes[case.id]) for case in CASES if case.id in homes
    }
    try:
        yield futures
    finally:
        pool.shutdown(wait=True)
        for case in CASES:
            if case.tmpfs is not None and case.id in homes:
                subprocess.run(["umount", "-l", str(homes[case.id] / case.tmpfs)], check=False)
        for path in base.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fails_cleanly(case: Case, table: dict[str, Future[Outcome]]) -> None:
    """One error line with the reason, the exit code, no traceback, nothing written or lost."""
    outcome = table[case.id].result(timeout=4 * TIMEOUT)
    if outcome.skip is not None:
        pytest.skip(outcome.skip)
    report = f"exit {outcome.code}\nstderr:\n{outcome.stderr}"
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, report
    assert lines[0].startswith(ERROR), report
    assert re.search(case.reason, lines[0]), report
    if case.not_reason is not None:
        assert not re.search(case.not_reason, lines[0]), report
    assert "Traceback" not in outcome.stderr
    assert outcome.code == case.code, report
    assert outcome.stdout == b"", "nothing may reach standard output"
    temporary = [name for name in outcome.after if name.endswith(".tmp")]
    assert temporary == [], f"temporary files left behind: {temporary}"
    assert outcome.after.keys() == outcome.before.keys(), "files appeared or disappeared"
    changed = [name for name in outcome.before if outcome.before[name] != outcome.after[name]]
    assert changed == [], f"files changed: {changed}"


# --------------------------------------------------------------------------------------------
# Helpers for the other tests


def run(
    *args: str | Path, cwd: Path, stdin: bytes = b"", check: int | None = 0
) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [*CONVTOOL, *(str(a) for a in args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
    )
    if check is not None:
        assert done.returncode == check, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    return done


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def box3(stored: np.ndarray) -> np.ndarray:
    """What ``-k box:3`` (reflect) stores for 8-bit grey ``stored``: the scipy oracle."""
    unit = stored.astype(np.float64) / 255.0
    return np.rint(ndimage.correlate(unit, np.full((3, 3), 1 / 9), mode="reflect") * 255)


def notes(stderr: bytes) -> list[str]:
    lines = stderr.decode().splitlines()
    assert all(line.startswith("convtool: note: ") for line in lines), lines
    return [line.removeprefix("convtool: note: ") for line in lines]


# --------------------------------------------------------------------------------------------
# Resource bounds


# A parent's resident pages count in a forked child's ru_maxrss (Linux records the old memory's
# high-water mark at exec), so pytest's own size would show up as the child's peak. A small
# Python process in between starts convtool and reports convtool's own peak in KiB.
_PEAK_RSS_WRAPPER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "err = p.stderr.read()\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.stderr.buffer.write(err)\n"
    "print(usage.ru_maxrss)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def test_png_bomb_is_refused_before_decoding_quickly_and_in_little_memory(tmp_path):
    """The header is read, the 10-gigapixel image never allocated: small peak memory, fast."""
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_WRAPPER, *CONVTOOL, "apply", "bomb.png", "-k", "box",
         "-o", "out.png"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "more than the limit" in err, err
    peak_mib = int(proc.stdout) / 1024  # Linux: KiB
    assert peak_mib < 250, f"peak memory {peak_mib:.0f} MiB; decoding would need 9500 MiB"
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png"]


def test_max_pixels_raises_the_limit(tmp_path):
    image = _grey(11, (100, 100))
    (tmp_path / "x.png").write_bytes(_png_bytes(image))
    refused = run("apply", "x.png", "-k", "identity", "-o", "y.png", "--max-pixels", "9999",
                  cwd=tmp_path, check=1)  # fmt: skip
    assert "more than the limit of 9,999" in refused.stderr.decode()
    assert "--max-pixels 10000" in refused.stderr.decode()
    run("apply", "x.png", "-k", "identity", "-o", "y.png", "--max-pixels", "10000", cwd=tmp_path)
    np.testing.assert_array_equal(pixels(tmp_path / "y.png"), image)
    assert DEFAULT_MAX_PIXELS == 100_000_000


# --------------------------------------------------------------------------------------------
# Closed pipes


@pytest.mark.parametrize("what", ["image", "matrix"])
def test_stdout_closed_early_ends_quietly(tmp_path, what):
    """``| head -c 10``: the reader goes away; convtool stops without a word, exit 0."""
    if what == "image":
        (tmp_path / "in.png").write_bytes(_png_bytes(_grey(12, (500, 500, 3))))
        source = "in.png"
    else:
        np.savetxt(tmp_path / "in.txt", np.random.default_rng(0).random((600, 600)))
        source = "in.txt"
    shell = (
        f"{sys.executable} -m convtool apply {source} -k box:3 -o - 2>err | head -c 10 >head; "
        'echo "${PIPESTATUS[0]}" >code'
    )
    subprocess.run(["bash", "-c", shell], cwd=tmp_path, check=True, timeout=TIMEOUT)
    assert (tmp_path / "err").read_text() == ""
    assert (tmp_path / "code").read_text().strip() == "0"
    assert len((tmp_path / "head").read_bytes()) == 10


# --------------------------------------------------------------------------------------------
# Signals


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_in_the_middle_of_a_batch(tmp_path, sig, code):
    """a and b are written, then convtool waits on c (a FIFO nobody writes): the signal comes
    exactly there. Exit 130/143, no traceback, a and b complete, nothing of c or d."""
    sources = {"a.png": _grey(20, (40, 50)), "b.png": _grey(21, (40, 50))}
    for name, stored in sources.items():
        (tmp_path / name).write_bytes(_png_bytes(stored))
    os.mkfifo(tmp_path / "c.png")
    (tmp_path / "d.png").write_bytes(_png_bytes(_grey(22, (40, 50))))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*CONVTOOL, "apply", "a.png", "b.png", "c.png", "d.png", "-k", "box:3", "--out-dir", "out"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: (out / "b.png").exists(), "b.png is written")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert all(line.startswith("convtool: ") for line in err.splitlines()), err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    for name, stored in sources.items():
        assert np.abs(pixels(out / name) - box3(stored)).max() <= 1


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_a_file_is_being_written_leaves_no_temporary_file(tmp_path, sig, code):
    """Catch convtool while a temporary output file exists (stopped with SIGSTOP; an unnamed
    one seen in /proc), signal it: nothing temporary is left; every output present is
    complete."""
    rng = np.random.default_rng(3)
    names = [f"m{i}.npy" for i in range(4)]
    sources = {}
    for name in names:
        sources[name] = rng.random((1500, 1500, 3))  # 54 MB each way: a long write + fsync
        np.save(tmp_path / name, sources[name])
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [*CONVTOOL, "apply", *names, "-k", "identity", "--out-dir", "out"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    caught = None
    try:
        deadline = time.monotonic() + 120
        while caught is None and proc.poll() is None and time.monotonic() < deadline:
            if writing_into(proc.pid, out):
                os.kill(proc.pid, signal.SIGSTOP)
                if writing_into(proc.pid, out):
                    caught = "a temporary file"
                    os.kill(proc.pid, sig)
                os.kill(proc.pid, signal.SIGCONT)
            else:
                time.sleep(0.0005)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert caught is not None, "never saw a temporary file (the writes were too fast to catch)"
    assert proc.returncode == code, err
    assert "Traceback" not in err
    left = sorted(os.listdir(out))
    assert not [n for n in left if n.endswith(".tmp")], left
    assert set(left) <= set(names)
    for name in left:
        np.testing.assert_array_equal(np.load(out / name), sources[name])


# --------------------------------------------------------------------------------------------
# Must succeed, with a note where something was decided for the user


def test_animated_gif_on_standard_input_gives_its_first_frame_with_a_note(tmp_path):
    """From a file every frame is filtered (tests/cli/test_cli_pages.py); standard input is
    read as one picture."""
    first = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (8, 1))
    frames = [Image.fromarray(first), Image.fromarray(np.full((8, 10), 200, np.uint8))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    with Image.open(tmp_path / "anim.gif") as im:
        assert im.n_frames == 2
    with open(tmp_path / "anim.gif", "rb") as stdin:
        done = subprocess.run(
            [*CONVTOOL, "apply", "-", "-k", "identity", "-o", "first.png"],
            stdin=stdin,
            capture_output=True,
            cwd=tmp_path,
            timeout=120,
        )
    assert notes(done.stderr) == [
        "standard input: an animated GIF with 2 frames; only the first frame is filtered"
    ]
    stored = pixels(tmp_path / "first.png")
    channels = stored if stored.ndim == 2 else stored[..., :3]
    for channel in np.moveaxis(np.atleast_3d(channels), -1, 0):
        np.testing.assert_array_equal(channel, first)


def test_cmyk_jpeg(tmp_path):
    cmyk = np.random.default_rng(4).integers(0, 256, size=(8, 10, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=100)
    with Image.open(tmp_path / "c.jpg") as im:
        decoded = np.asarray(im)  # what Pillow decodes (the JPEG loss included)
        as_rgb = np.asarray(im.convert("RGB")).astype(int)
    done = run("apply", "c.jpg", "-k", "identity", "-o", "c.tif", cwd=tmp_path)
    assert done.stderr == b""  # TIFF holds CMYK: nothing decided
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), decoded)
    done = run("apply", "c.jpg", "-k", "identity", "-o", "c.png", cwd=tmp_path)
    assert notes(done.stderr) == ["PNG holds no CMYK: writing RGB"]
    assert np.abs(pixels(tmp_path / "c.png").astype(int) - as_rgb).max() <= 1


def test_one_bit_image_is_filtered_as_8_bit_grey_with_a_note(tmp_path):
    bits = np.random.default_rng(5).random((9, 11)) > 0.5
    Image.fromarray(bits).save(tmp_path / "bits.png")
    with Image.open(tmp_path / "bits.png") as im:
        assert im.mode == "1"
    done = run("apply", "bits.png", "-k", "identity", "-o", "same.png", cwd=tmp_path)
    assert notes(done.stderr) == [
        "bits.png: a 1-bit image, filtered as 8-bit grey (0 and 255) and written so"
    ]
    np.testing.assert_array_equal(pixels(tmp_path / "same.png"), bits * 255)
    run("apply", "bits.png", "-k", "box:3", "-o", "soft.png", cwd=tmp_path)
    assert np.abs(pixels(tmp_path / "soft.png") - box3(bits.astype(np.uint8) * 255)).max() <= 1


def test_zero_sum_kernel_with_normalize_is_left_as_it_is_with_a_note(tmp_path):
    matrix = np.random.default_rng(6).integers(-9, 10, size=(5, 6)).astype(float)
    np.savetxt(tmp_path / "m.txt", matrix)
    done = run("apply", "m.txt", "-k", "laplacian", "--normalize", "-o", "-", cwd=tmp_path)
    assert notes(done.stderr) == [
        "kernel 'laplacian' sums to 0, so --normalize leaves it as it is (dividing by its sum "
        "would be dividing by zero)"
    ]
    expected = ndimage.correlate(matrix, LAPLACIAN, mode="reflect")
    np.testing.assert_allclose(np.loadtxt(io.BytesIO(done.stdout)), expected, atol=1e-9)
    plain = run("apply", "m.txt", "-k", "laplacian", "-o", "-", cwd=tmp_path)
    assert plain.stdout == done.stdout


def test_output_equal_to_the_input_is_replaced_atomically(tmp_path):
    stored = _grey(13, (6, 8))
    source = tmp_path / "x.png"
    source.write_bytes(_png_bytes(stored))
    source.chmod(0o640)
    run("apply", "x.png", "-k", "edge", "--border", "valid", "--map", "abs", "-o", "x.png",
        cwd=tmp_path)  # fmt: skip
    unit = stored / 255.0
    expected = np.rint(np.clip(np.abs(unit[:, :-1] - unit[:, 1:]), 0, 1) * 255)
    np.testing.assert_array_equal(pixels(source), expected)
    assert stat.S_IMODE(source.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_a_tiff_tag_tifffile_skips_adds_no_line_to_stderr(tmp_path):
    """tifffile logs the tag it cannot parse and reads on; convtool prints nothing of it."""
    (tmp_path / "odd.tif").write_bytes(tiff_with_bad_tag_type())
    done = run("apply", "odd.tif", "-k", "identity", "-o", "odd.png", cwd=tmp_path)
    assert done.stderr == b""
    np.testing.assert_array_equal(pixels(tmp_path / "odd.png"), _grey(4))


def test_learn_on_a_flat_image_warns_and_still_answers(tmp_path):
    flat = _png_bytes(np.full((12, 16), 128, np.uint8))
    (tmp_path / "flat.png").write_bytes(flat)
    done = run("learn", "flat.png", "flat.png", "--size", "3", cwd=tmp_path)
    warnings = [line for line in done.stderr.decode().splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "flat" in warnings[0], done.stderr.decode()
    kernel = np.loadtxt(io.BytesIO(done.stdout))
    np.testing.assert_allclose(kernel, np.full((3, 3), 1 / 9), atol=1e-12)  # minimum norm


# --------------------------------------------------------------------------------------------
# A batch with broken inputs


def test_a_batch_writes_every_good_input_and_names_the_broken_ones(tmp_path):
    good = {f"g{i}.png": _grey(30 + i, (20, 24)) for i in range(6)}
    for name, stored in good.items():
        (tmp_path / name).write_bytes(_png_bytes(stored))
    (tmp_path / "junk.png").write_bytes(np.random.default_rng(2).bytes(200))
    (tmp_path / "cut.png").write_bytes(_png_bytes(_grey(40, (20, 24)))[:150])
    order = ["g0.png", "junk.png", "g1.png", "g2.png", "cut.png", "g3.png", "gone.png", "g4.png"]
    order.append("g5.png")
    done = run("apply", *order, "-k", "box:3", "--out-dir", "out", cwd=tmp_path, check=1)
    lines = done.stderr.decode().splitlines()
    assert lines == [
        f"{ERROR}junk.png: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, "
        "PPM/PGM...) nor a matrix file (.npy, .txt, .csv)",
        f"{ERROR}cut.png: broken or truncated PNG file (image file is truncated)",
        f"{ERROR}gone.png: no such file",
        f"{ERROR}3 of 9 inputs failed (junk.png, cut.png, gone.png)",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(good)
    for name, stored in good.items():
        assert np.abs(pixels(tmp_path / "out" / name) - box3(stored)).max() <= 1


# --------------------------------------------------------------------------------------------
# README


def test_readme_error_lines_are_what_convtool_prints(tmp_path):
    """The examples of docs/errors.md, run: the same lines, exit 1 or 2."""
    readme = (Path(__file__).resolve().parent.parent / "docs/errors.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- reliability: error-lines -->\n```console\n(.*?)\n```", readme, re.S)
    assert block is not None, "docs/errors.md lost its error-lines example"
    (tmp_path / "x.png").write_bytes(PNG)
    (tmp_path / "junk.png").write_bytes(b"not a picture at all")
    examples: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            examples.append((line[2:], []))
        else:
            examples[-1][1].append(line)
    assert len(examples) == 4
    for command, shown in examples:
        words = shlex.split(command)
        assert words[0] == "convtool"
        done = run(*words[1:], cwd=tmp_path, check=None)
        assert done.stderr.decode().splitlines() == shown, command
        assert done.returncode == (2 if "--depth" in words else 1)
    assert sorted(p.name for p in (tmp_path / "blurred").iterdir()) == ["x.png"]


# --------------------------------------------------------------------------------------------
# Properties: readers of untrusted text and bytes


MATRIX_PIECES = st.sampled_from(
    ["0", "1", "-2.5", "1e3", ".5", "1e400", "nan", "inf", "-", "e", "x", " ", "  ", "\t", ",",
     ";", "\n", "\r\n", "#", "# bias: 1\n", "\x00", "\xa0", "\u2028", "١", "0x1f", "1_0"]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=60), st.lists(MATRIX_PIECES, max_size=30).map("".join))


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_property_matrix_reader_gives_a_matrix_or_an_image_error(text):
    """Arbitrary text: a float64 (H, W) matrix, or ImageError — never another exception."""
    try:
        data = parse_matrix(text, "m.txt", DEFAULT_MAX_PIXELS)
    except ImageError as exc:
        assert str(exc).startswith("m.txt: ")
        return
    assert data.dtype == np.float64 and data.ndim == 2 and data.size > 0


_SUFFIXES = [".txt", ".csv", ".npy", ".png", ".jpg", ".gif", ".tif", ".bmp", ".webp", ".pgm"]


def _samples() -> dict[str, bytes]:
    rgb = np.dstack([_grey(50), _grey(51), _grey(52)])
    out = {}
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "PPM"):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=fmt)
        out[fmt] = buffer.getvalue()
    out["TIFF"] = _tiff_bytes(rgb)
    out["TIFF16"] = _tiff_bytes(_grey(53).astype(np.uint16) * 257)
    out["TIFFRGBA"] = _tiff_bytes(np.dstack([rgb, _grey(54)]), extrasamples=["unassalpha"])
    out["NPY"] = _npy_bytes(rgb / 255.0)
    out["TXT"] = b"1 2 3\n4 5 6\n"
    return out


SAMPLES = _samples()


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    """A real file with bytes changed and/or cut short, or plain random bytes."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))])
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, min(len(data), 400) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("damaged")


_counter = iter(range(10**9))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_files(), suffix=st.sampled_from(_SUFFIXES))
def test_property_damaged_files_give_a_picture_or_an_image_error(scratch, data, suffix):
    """Damaged or random files, by name and on standard input: a Picture or an ImageError."""
    path = scratch / f"f{next(_counter)}{suffix}"
    path.write_bytes(data)
    stdin = mock.Mock()
    stdin.buffer = io.BytesIO(data)
    for source in (path, "-"):
        try:
            with mock.patch.object(sys, "stdin", stdin):
                picture = read_picture(source, max_pixels=10**6)
        except ImageError:
            continue
        assert picture.data.ndim in (2, 3) and picture.data.size > 0
        assert np.isfinite(picture.data).all() or not picture.is_matrix
    path.unlink()


KERNEL_PIECES = st.sampled_from(
    ["box", "gaussian", "log", "motion", "diff", "unsharp", "directional", "sobel-x", "sobelx",
     "emboss", ":", "=", ",", ";", " ", "\n", "#", "sigma", "size", "length", "angle", "order",
     "axis", "amount", "x", "y", "0", "1", "3", "-1", "2.5", "1e308", "1e-320", "nan", "inf",
     "1025", "1026", "[", "]", "{", "}", '"kernel"', '"bias"', "true", "null", '"a"']
)  # fmt: skip
SPECS = st.one_of(st.text(max_size=40), st.lists(KERNEL_PIECES, max_size=16).map("".join))


@settings(max_examples=800, deadline=None)
@given(SPECS)
def test_property_kernel_specs_give_a_kernel_or_a_kernel_error(spec):
    """Built-in names with any arguments, inline and JSON matrices: a Kernel or KernelError."""
    try:
        kernel = load_kernel(spec)
    except KernelError:
        return
    w = kernel.weights
    assert w.ndim == 2 and w.size >= 1 and max(w.shape) <= MAX_KERNEL_SIDE
    assert np.isfinite(w).all() and np.isfinite(kernel.bias)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(damaged_files(), SPECS.map(str.encode)),
       suffix=st.sampled_from([".txt", ".csv", ".json", ".npy"]))  # fmt: skip
def test_property_kernel_files_give_a_kernel_or_a_kernel_error(scratch, data, suffix):
    path = scratch / f"k{next(_counter)}{suffix}"
    path.write_bytes(data)
    try:
        kernel = load_kernel(f"@{path}")
    except KernelError:
        return
    finally:
        path.unlink()
    assert kernel.weights.ndim == 2 and np.isfinite(kernel.weights).all()
