"""A bounded mutation fuzzer for every reader (issue 16, "Keep it that way").

Valid seed files of each format (PNG, JPEG, GIF, TIFF strips and tiles, WebP, BMP, PPM, .npy,
text matrices, kernel files) are mutated with a fixed seed: bits flipped, bytes set to edge
values, cut, chunks repeated or inserted. Every mutant must end in a result or in convtool's own
error (ImageError, KernelError), within a time bound; a few go through the CLI in a real process
under an address-space limit, which must leave no partial output.

CI runs a small budget; ``python benchmarks/fuzz.py --budget N`` runs a larger one by hand
(through ``CONVTOOL_FUZZ_BUDGET`` and ``CONVTOOL_FUZZ_SEED``).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from convtool.errors import ImageError, KernelError
from convtool.io.read import read_picture, read_picture_bytes
from convtool.kernels.spec import load_kernel
from convtool.stream.probe import check_stream_fits

BUDGET = int(os.environ.get("CONVTOOL_FUZZ_BUDGET", "40"))
"""Mutants per seed file."""

SEED = int(os.environ.get("CONVTOOL_FUZZ_SEED", "20261205"))
SECONDS_PER_MUTANT = 20
MAX_PIXELS = 4_000_000


def _picture(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _pillow(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _tiff(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


IMAGE_SEEDS: dict[str, Callable[[], bytes]] = {
    "grey.png": lambda: _pillow(_picture(1, (24, 32)), "PNG"),
    "rgba.png": lambda: _pillow(_picture(2, (20, 28, 4)), "PNG"),
    "deep.png": lambda: _pillow(_picture(3, (16, 16)).astype(np.uint16) * 257, "PNG"),
    "base.jpg": lambda: _pillow(_picture(4, (32, 40, 3)), "JPEG", quality=90),
    "prog.jpg": lambda: _pillow(_picture(5, (32, 40, 3)), "JPEG", progressive=True),
    "still.gif": lambda: _pillow(_picture(6, (20, 24)), "GIF"),
    "strips.tif": lambda: _tiff(_picture(7, (32, 24, 3)), rowsperstrip=8),
    "tiles.tif": lambda: _tiff(_picture(8, (32, 32)), tile=(16, 16), compression="zlib"),
    "lossless.webp": lambda: _pillow(_picture(9, (20, 24, 3)), "WEBP", lossless=True),
    "image.bmp": lambda: _pillow(_picture(10, (18, 22, 3)), "BMP"),
    "image.ppm": lambda: _pillow(_picture(11, (18, 22, 3)), "PPM"),
    "matrix.npy": lambda: _npy(np.random.default_rng(12).random((12, 10))),
    "matrix.txt": lambda: b"0 1 2 3\n4 5.5 -6 7e-1\n# a comment\n8, 9, 10, 11\n",
}

KERNEL_SEEDS: dict[str, Callable[[], bytes]] = {
    "k.txt": lambda: b"# bias: 0.5\n1 0 -1\n2 0 -2\n1 0 -1\n",
    "k.json": lambda: b'{"kernel": [[1, 2, 3], [4, 5, 6]], "bias": 1.5}',
    "k.npy": lambda: _npy(np.arange(9.0).reshape(3, 3)),
}

_EDGES = (0, 1, 0x7F, 0x80, 0xFF)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One mutant of ``data``: 1 to 4 of flips, edge bytes, cuts, repeats, insertions."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        if not out:
            out = bytearray(b"\0")
        at = int(rng.integers(0, len(out)))
        kind = int(rng.integers(0, 6))
        if kind == 0:
            out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            out[at] = _EDGES[int(rng.integers(0, len(_EDGES)))]
        elif kind == 2:
            out = out[: max(1, at)]
        elif kind == 3:
            width = int(rng.integers(1, 65))
            out[at:at] = out[at : at + width] * int(rng.integers(1, 8))
        elif kind == 4:
            out[at:at] = rng.integers(
                0, 256, size=int(rng.integers(1, 17)), dtype=np.uint8
            ).tobytes()
        else:
            out[at : at + 4] = int(rng.integers(0, 2**32)).to_bytes(4, "big")
    return bytes(out)


def mutants(name: str, seed: bytes, budget: int) -> Iterator[tuple[int, bytes]]:
    rng = np.random.default_rng([SEED, *name.encode()])
    for number in range(budget):
        yield number, mutate(seed, rng)


@contextlib.contextmanager
def bounded(seconds: int, what: str) -> Iterator[None]:
    """Fail (instead of hanging) when the block takes longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", sorted(IMAGE_SEEDS))
def test_every_image_mutant_reads_or_fails_cleanly(tmp_path: Path, name: str) -> None:
    seed = IMAGE_SEEDS[name]()
    read_picture(_written(tmp_path / name, seed), max_pixels=MAX_PIXELS)  # the seed reads
    outcomes = {"read": 0, "refused": 0}
    for number, data in mutants(name, seed, BUDGET):
        path = _written(tmp_path / name, data)
        with bounded(SECONDS_PER_MUTANT, f"{name} mutant {number}"):
            try:
                picture = read_picture(path, max_pixels=MAX_PIXELS)
            except ImageError as error:
                assert "\n" not in str(error), f"mutant {number}: {error!r}"
                outcomes["refused"] += 1
            else:
                assert picture.data.size > 0
                outcomes["read"] += 1
    assert sum(outcomes.values()) == BUDGET


@pytest.mark.parametrize("name", sorted(IMAGE_SEEDS))
def test_every_image_mutant_from_a_stream_reads_or_fails_cleanly(name: str) -> None:
    """Bytes from standard input or a pipe: sniffed (image, .npy or text), their header
    checked against the memory budget, then decoded."""
    seed = IMAGE_SEEDS[name]()
    read_picture_bytes(seed, "standard input", max_pixels=MAX_PIXELS)
    for number, data in mutants(f"stream-{name}", seed, BUDGET):
        with bounded(SECONDS_PER_MUTANT, f"{name} stream mutant {number}"):
            try:
                check_stream_fits(data, "standard input", memory=64 << 20, max_pixels=MAX_PIXELS)
                picture = read_picture_bytes(data, "standard input", max_pixels=MAX_PIXELS)
            except ImageError as error:
                assert "\n" not in str(error), f"mutant {number}: {error!r}"
            else:
                assert picture.data.size > 0


@pytest.mark.parametrize("name", sorted(KERNEL_SEEDS))
def test_every_kernel_file_mutant_loads_or_fails_cleanly(tmp_path: Path, name: str) -> None:
    seed = KERNEL_SEEDS[name]()
    load_kernel(f"@{_written(tmp_path / name, seed)}")
    for number, data in mutants(name, seed, BUDGET):
        path = _written(tmp_path / name, data)
        with bounded(SECONDS_PER_MUTANT, f"{name} mutant {number}"):
            try:
                kernel = load_kernel(f"@{path}")
            except KernelError as error:
                assert "\n" not in str(error), f"mutant {number}: {error!r}"
            else:
                assert np.all(np.isfinite(kernel.weights))


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


CLI_MUTANTS = max(2, BUDGET // 10)
CONVTOOL = [sys.executable, "-m", "convtool", "apply"]


@pytest.mark.parametrize("name", ["grey.png", "base.jpg", "tiles.tif", "matrix.npy"])
def test_cli_mutants_end_in_one_line_and_leave_no_partial_output(tmp_path: Path, name: str) -> None:
    seed = IMAGE_SEEDS[name]()
    suffix = ".npy" if name.endswith(".npy") else ".png"
    for number, data in mutants(f"cli-{name}", seed, CLI_MUTANTS):
        source = _written(tmp_path / name, data)
        target = tmp_path / f"out{suffix}"
        target.unlink(missing_ok=True)
        result = subprocess.run(
            [
                *CONVTOOL,
                source.name,
                "-k",
                "box",
                "-o",
                target.name,
                "--max-pixels",
                str(MAX_PIXELS),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_address_space,
            check=False,
        )
        assert "Traceback" not in result.stderr and "this is a bug" not in result.stderr
        if result.returncode == 0:
            assert target.exists(), f"mutant {number}"
        else:
            errors = [line for line in result.stderr.splitlines() if "error:" in line]
            assert result.returncode == 1 and len(errors) == 1, f"mutant {number}: {result}"
            assert not target.exists(), f"mutant {number} left a partial output"
        assert {p.name for p in tmp_path.iterdir()} <= {name, target.name}
