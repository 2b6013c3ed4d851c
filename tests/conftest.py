"""Shared fixtures and helpers for convtool's tests."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# The suite compiles numba's core in the foreground, as plain numba does, rather than running
# the numpy twins and leaving background compiles behind; tests of that behaviour set it back.
os.environ.setdefault("CONVTOOL_COMPILE", "now")

CONVERT = "/usr/bin/convert"
"""ImageMagick's own convert (`apt-get install imagemagick`, as `.ci/run` does); a `convert`
found elsewhere on PATH may be a stand-in."""

imagemagick = pytest.mark.skipif(
    not os.access(CONVERT, os.X_OK), reason=f"ImageMagick's {CONVERT} is not installed"
)


def distinct_kernel(kh: int, kw: int, seed: int = 0) -> np.ndarray:
    """A kernel whose entries all differ, so that a flip or a transpose cannot hide.

    Powers of two while they stay small, otherwise a shuffled ±1..n.
    """
    n = kh * kw
    values = 2.0 ** np.arange(n) if n <= 16 else np.arange(1, n + 1, dtype=np.float64)
    values = values * np.where(np.arange(n) % 3 == 1, -1.0, 1.0)
    return np.random.default_rng(seed).permutation(values).reshape(kh, kw)


def random_image(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual: np.ndarray, expected: np.ndarray, kernel: np.ndarray, image) -> None:
    """Whole arrays equal within the rounding of the result's float type."""
    assert actual.shape == expected.shape
    eps = 1e-12 if actual.dtype == np.float64 else 2e-6
    scale = np.abs(kernel).sum() * max(1.0, float(np.abs(np.asarray(image, float)).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=eps * scale)


def background_compilers(cache: Path) -> list[int]:
    """The pids of ``python -m convtool.compiled`` processes compiling into ``cache``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"\0-m\0convtool.compiled\0" not in (proc / "cmdline").read_bytes():
                continue
            if f"NUMBA_CACHE_DIR={cache}\0".encode() in (proc / "environ").read_bytes() + b"\0":
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def stop_background_compilers(cache: Path) -> int:
    """End the background compiles into ``cache`` (they run at the idle priority, which two
    busy test workers can starve for minutes); how many there were."""
    pids = background_compilers(cache)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def stderr_on_a_terminal(
    command: list[str], *, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    """Run ``command`` with stderr on a pseudo-terminal; its exit code and what it showed."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stderr=terminal, env=env, timeout=timeout
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written has been read
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        with contextlib.suppress(OSError):
            os.close(terminal)
        os.close(controller)
    return done.returncode, shown


@contextlib.contextmanager
def loopback_cluster() -> Iterator[Any]:
    """A two-worker dask.distributed cluster on the loopback interface, closed on leaving."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


def writing_into(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` is writing a result into ``folder``: an unnamed file there
    open (O_TMPFILE, shown as ``folder/#123 (deleted)``), or a hidden ``.tmp`` file."""
    if any(name.endswith(".tmp") for name in os.listdir(folder)):
        return True
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(f"{folder}/") and target.endswith(" (deleted)"):
                return True
    return False
