"""Streaming vs in-memory ``convtool apply`` on a large RGB 8-bit TIFF: peak RSS and throughput.

    python benchmarks/stream.py --size 20000             # both paths on 20000 x 20000
    python benchmarks/stream.py --size 40000 --only stream --memory 512M

The input is synthetic (smooth waves plus noise, so a blur has work to do), written band by band
as an uncompressed BigTIFF with convtool's own streamed writer; it is deleted afterwards unless
``--keep``. Each run is a separate ``convtool apply`` process; its peak resident set is its
VmHWM (polled from /proc), its throughput is pixels per second of
wall time, reading and writing included. The in-memory path is forced with a huge
``--max-pixels`` and no ``--memory``; the streamed one with ``--memory``. Not a test: the issue's
target is a 40000 x 40000 RGB image with a 15 x 15 Gaussian under 1 GiB peak RSS, within 1.5x
of the in-memory throughput per pixel (the in-memory path needs about 4 float32 copies of the
image, 77 GB at 40000 x 40000, so on a 24 GB machine it can only be measured on smaller sizes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from convtool.io.tiff import write_tiff

KERNEL = "gaussian:sigma=2.5,size=15"


def make_input(path: Path, size: int, band: int = 512) -> None:
    """A size x size RGB uint8 TIFF, uncompressed strips (BigTIFF past 4 GB), band by band."""
    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)
    wave_x = np.sin(x / 37.0)

    def bands():
        for r0 in range(0, size, band):
            rows = np.arange(r0, min(size, r0 + band), dtype=np.float32)
            base = np.outer(np.cos(rows / 23.0), wave_x)  # in [-1, 1]
            rgb = np.empty((rows.size, size, 3), np.uint8)
            for c, gain in enumerate((90.0, 70.0, 50.0)):
                noise = rng.integers(0, 40, (rows.size, size), dtype=np.uint8)
                rgb[..., c] = (base * gain + 128 - 20).astype(np.uint8) + noise
            yield r0, rgb

    write_tiff(path, bands(), (size, size, 3), np.uint8, photometric="rgb", rows_per_strip=64)


def run(args: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in bytes, and exit code of ``convtool apply ARGS``.

    The peak is the child's VmHWM from /proc, polled every 20 ms: ``ru_maxrss`` would also
    count the parent's pages at fork time.
    """
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "convtool", "apply", *args])
    peak = 0
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status", encoding="ascii") as fp:
                for line in fp:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.02)
    return time.perf_counter() - start, peak, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="image side in pixels")
    parser.add_argument("--memory", default="512M", help="--memory for the streamed run")
    parser.add_argument("--only", choices=("both", "stream", "memory"), default="both")
    parser.add_argument("--compress-level", default="0", help="output zlib level (0: none)")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    parser.add_argument("--keep", action="store_true", help="keep the input and outputs")
    options = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="convtool-stream-", dir=options.dir))
    source = directory / f"in-{options.size}.tif"
    t = time.perf_counter()
    make_input(source, options.size)
    print(f"input {source.name}: {source.stat().st_size / 1e9:.2f} GB "
          f"written in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
    pixels = options.size**2
    common = [str(source), "-k", KERNEL, "--compress-level", options.compress_level]
    runs = {}
    if options.only in ("both", "stream"):
        out = directory / "streamed.tif"
        runs["streamed"] = (*run([*common, "--memory", options.memory, "-o", str(out)]), out)
    if options.only in ("both", "memory"):
        out = directory / "in-memory.tif"
        runs["in-memory"] = (*run([*common, "--max-pixels", str(10 * pixels), "-o", str(out)]), out)
    print(f"\n{options.size} x {options.size} RGB uint8, {KERNEL}, "
          f"compress-level {options.compress_level}")  # fmt: skip
    print(f"{'path':<10} {'seconds':>8} {'Mpixel/s':>9} {'peak RSS':>10}  exit")
    for name, (seconds, rss, code, _) in runs.items():
        print(f"{name:<10} {seconds:8.1f} {pixels / seconds / 1e6:9.1f} "
              f"{rss / 2**20:7.0f} MiB  {code}")  # fmt: skip
    if len(runs) == 2 and all(r[2] == 0 for r in runs.values()):
        ratio = runs["streamed"][0] / runs["in-memory"][0]
        print(f"streamed / in-memory time per pixel: {ratio:.2f}x")
        a = runs["streamed"][3]
        b = runs["in-memory"][3]
        import tifffile

        same = True
        with tifffile.TiffFile(a) as ta, tifffile.TiffFile(b) as tb:
            ra, rb = ta.pages.first, tb.pages.first
            # compare a few row blocks without loading either file whole
            from convtool.io.tiff import TiffReader

            with TiffReader(a) as xa, TiffReader(b) as xb:
                for r0 in np.linspace(0, options.size - 8, 5).astype(int):
                    da = xa.read_rows(r0, r0 + 8).astype(int)
                    db = xb.read_rows(r0, r0 + 8).astype(int)
                    same &= bool(np.abs(da - db).max() <= 1)
            print(f"outputs agree within one level on sampled rows: {same} "
                  f"({ra.shape} vs {rb.shape})")  # fmt: skip
    if not options.keep:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


if __name__ == "__main__":
    main()
