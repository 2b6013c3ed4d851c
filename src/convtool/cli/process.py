"""The command's process: signals that end the run, closed standard streams, stdout after
its reader has gone, and what the command keeps from loading."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO, Any

EXIT_SIGINT = 130
EXIT_SIGTERM = 143
"""What a shell reports for a process ended by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT.

    A BaseException, so that no ``except Exception`` swallows it and every ``finally`` and
    ``except BaseException`` cleanup runs on the way out: the temporary file of the output in
    progress is removed, the files already renamed into place stay complete.
    """


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # The first signal ends the run; more of them while the cleanup runs must not cut it short.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


@contextmanager
def signals_end_the_run() -> Iterator[None]:
    """SIGINT and SIGTERM raise in the main thread while convtool runs (restored after)."""
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    except ValueError:  # not the main thread (convtool called from a thread): leave them
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def reopen_closed_streams() -> None:
    """Give a closed standard stream (``2>&-``, ``>&-``, ``<&-``) a file descriptor again.

    Python starts with ``sys.stderr`` etc. set to None when the descriptor is closed: every
    note, error line or final flush would raise AttributeError, and the first file opened would
    take the free descriptor, so that a library writing to fd 2 would write into an output.
    Each closed one is opened on the null device: stderr to write to (its lines are dropped,
    as the user asked), stdin to read (``-`` is then empty, refused as such), stdout read-only,
    so that an image sent there fails as writing to a closed descriptor does (EBADF: one error
    line) instead of vanishing.
    """
    for fd, mode, name in ((0, os.O_RDONLY, "stdin"), (1, os.O_RDONLY, "stdout"),
                           (2, os.O_WRONLY, "stderr")):  # fmt: skip
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, mode)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


@contextmanager
def library_logs_silenced() -> Iterator[None]:
    """No library's log reaches stderr: tifffile logs what it skips in a damaged file
    ('<TiffTag.fromfile> raised ...'), Dask's client a lost scheduler with its traceback;
    convtool reports each in its own one line instead. Every logger, whenever its library is
    imported and whatever handlers it brings (Dask sets its own up on import)."""
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(disabled)


def silence_stdout(stdout: IO[Any]) -> None:
    """After the reader closed the pipe: point stdout at devnull so exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


@contextmanager
def numba_without_scipy() -> Iterator[None]:
    """Within: scipy is hidden, so that numba, if the command loads it, loads without scipy.

    numba's first compiled function loads ``numba.np.arraymath``, which checks for a BLAS (for
    ``np.dot`` in jitted code) by importing ``scipy.linalg.cython_blas``, and so all of
    ``scipy.linalg`` when scipy is installed; ``import numba`` itself imports scipy to check
    its version. convtool's jitted code calls no BLAS and nothing of scipy, and the command's
    process runs no other numba code, so the commands hide scipy while they filter (numba then
    computes ``np.dot`` with its own loops). Only the commands, and only while they run: the
    library API leaves numba alone, as a user's own numba code may need BLAS. No effect once
    scipy or numba's registries are loaded.
    """
    if "scipy" in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules["scipy"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("scipy", sys) is None:
            del sys.modules["scipy"]
