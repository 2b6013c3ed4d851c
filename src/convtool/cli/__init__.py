"""The ``convtool`` command: parse, delegate to the API, report.

``main`` is the console entry point: it maps usage errors, Ctrl-C, SIGTERM and a closed pipe
to one stderr line (or silence) and an exit code, so no traceback reaches the user.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn

import typer

from convtool import compiled
from convtool.cli import apply as _apply  # noqa: F401  (registers the command)
from convtool.cli import kernels as _kernels  # noqa: F401  (registers the command)
from convtool.cli import learn as _learn  # noqa: F401  (registers the command)
from convtool.cli.app import app, debug_enabled, echo_error, unexpected

__all__ = ["app", "entry", "main"]

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
def _signals_end_the_run() -> Iterator[None]:
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


def main(argv: list[str] | None = None) -> int:
    """Run convtool with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    0 success; 1 an error (one ``convtool: error:`` line; in a batch, any input failed); 2 a
    usage error; 130 Ctrl-C (SIGINT); 143 SIGTERM. A closed pipe on stdout ends quietly with 0.
    """
    _reopen_closed_streams()
    compiled.compile_in_background()
    try:
        with _signals_end_the_run(), warnings.catch_warnings(), _library_logs_silenced():
            if not _debug_asked(argv):
                # What the user must know is a note or an error line; a Python warning from a
                # library (numpy overflow in an extreme --scale...) would add raw lines.
                warnings.simplefilter("ignore")
            return _run(argv)
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Terminated:
        return EXIT_SIGTERM


def entry() -> NoReturn:
    """The console command: :func:`main` on ``sys.argv``, then the process ends at once.

    By then every output is complete and renamed into place, every temporary file removed, the
    progress bar and a Dask client closed, and stdout and stderr are flushed here: what the
    interpreter's shutdown would still do — tear down numba's thread pool and the modules,
    ~0.2–0.3 s after a filter — changes nothing, so it is skipped (``os._exit``). ``main``
    itself returns, for callers in the same process (tests, ``CliRunner``).
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _reopen_closed_streams() -> None:
    """Give a closed standard stream (``2>&-``, ``>&-``, ``<&-``) a file descriptor again.

    Python starts with ``sys.stderr`` etc. set to None when the descriptor is closed: every
    note, error line or final flush then raised AttributeError (a traceback, exit 1, and a
    batch that wrote nothing), and the first file opened took the free descriptor, so that
    a library writing to fd 2 would have written into an output. Each closed one is opened on
    the null device: stderr to write to (its lines are dropped, as the user asked), stdin to
    read (``-`` is then empty, refused as such), stdout read-only, so that an image sent there
    fails as writing to a closed descriptor does (EBADF: one error line) instead of vanishing.
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
def _library_logs_silenced() -> Iterator[None]:
    """tifffile logs what it skips in a damaged file ('<TiffTag.fromfile> raised ...') on
    stderr; convtool reports a file it cannot read in its own one line instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _debug_asked(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return debug_enabled() or "--debug" in args[: args.index("--") if "--" in args else None]


def _run(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, prog_name="convtool", standalone_mode=False)
    except typer.Abort:
        return EXIT_SIGINT
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        message = getattr(exc, "format_message", None)
        if debug_enabled():
            raise
        if not isinstance(code, int) or message is None:
            if isinstance(exc, OSError):
                _silence_stdout()  # a full disk: drop what is still buffered, quietly
            echo_error(unexpected(exc))
            return 1
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            return 0
        echo_error(message())
        return code
    if not _flush_stdout():
        return 1
    return result if isinstance(result, int) else 0


def _flush_stdout() -> bool:
    """Flush what the command printed; False (after one error line) if it cannot be written."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as exc:
        _silence_stdout()
        echo_error(f"standard output: cannot be written ({exc.strerror or exc})")
        return False
    return True


def _silence_stdout() -> None:
    """After the reader closed the pipe: point stdout at devnull so exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
