"""The Typer application, the global options, and the one place errors become stderr lines."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer

from convtool import __version__
from convtool.cli import coercion
from convtool.errors import ConvtoolError

coercion.install()

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="convtool",
    help=(
        "Filter images with convolution kernels, and learn the kernel that turned one image "
        "into another. convtool cross-correlates (no kernel flip) unless --convolve.\n\n"
        "Examples:\n\n"
        "  convtool apply photo.png -k sobel-x --map abs -o edges.png\n\n"
        "  convtool learn photo.png blurred.png --size 5 -o kernel.txt\n\n"
        "  convtool kernels gaussian:sigma=1"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": bool(os.environ.get("CONVTOOL_DEBUG"))}


def error_line(message: str) -> str:
    return f"convtool: error: {message}"


def echo_error(message: str) -> None:
    _to_stderr(error_line(message))


def _to_stderr(line: str) -> None:
    """One line on stderr. Once its reader has gone (``2>&1 | head -c 5``), the lines after
    are dropped and the command carries on: a batch still writes every file it can."""
    try:
        typer.echo(line, err=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)  # what is still buffered, and every later line, goes nowhere
        finally:
            os.close(devnull)


def unexpected(exc: BaseException) -> str:
    """The error line's text for an exception convtool did not raise on purpose."""
    if isinstance(exc, MemoryError):
        return (
            "out of memory; free memory, or work on smaller images (--max-pixels refuses large "
            "ones before decoding)"
        )
    if isinstance(exc, OSError) and exc.strerror:
        # I/O convtool does not wrap itself: the lines a command prints (kernels, reports)
        what = f"{exc.filename}: cannot be used" if exc.filename else "cannot write the output"
        return f"{what} ({exc.strerror})"
    return (
        f"unexpected {type(exc).__name__}: {exc}; this is a bug in convtool: run again with "
        "--debug for the traceback, and report it"
    )


def note(message: str) -> None:
    """A one-line note on stderr for something convtool decided for the user."""
    _to_stderr(f"convtool: note: {message}")


def reports_errors(command: F) -> F:
    """Turn a ConvtoolError raised by a command into one stderr line and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConvtoolError as exc:
            if _state["debug"]:
                raise
            echo_error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


class BatchReport:
    """A batch's failures told as the command tells them: one error line per input (named
    when there are several), a summary line, then exit code 1; a progress bar on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total

    def failed(self, source: str, error: Exception | str) -> None:
        """One input failed: an exception raised here, or a worker's message."""
        from convtool.batch.pipeline import about

        if isinstance(error, Exception):
            if debug_enabled():
                raise error
            # a ConvtoolError says it all; else out of memory, or a bug: the others run
            error = str(error) if isinstance(error, ConvtoolError) else unexpected(error)
        echo_error(about(source, error) if self.total > 1 else error)

    def finish(self, failed: list[str]) -> None:
        """Exit 1 if any input failed, after a summary line naming the first few."""
        if not failed:
            return
        if self.total > 1:
            shown = ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
            echo_error(f"{len(failed)} of {self.total} inputs failed ({shown})")
        raise typer.Exit(1)

    @contextmanager
    def progress(self) -> Iterator[Callable[[], None]]:
        """A rich progress bar on stderr when it is a terminal (else nothing); its advance."""
        if not _stderr_is_terminal():
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=False) as bar:
            task = bar.add_task("filtering", total=self.total)
            yield lambda: bar.advance(task)


@contextmanager
def numba_without_scipy() -> Iterator[None]:
    """Within: scipy is hidden, so that numba, if the core loads it, loads 0.25–0.3 s sooner.

    numba's first compiled function loads ``numba.np.arraymath``, which checks for a BLAS (for
    ``np.dot`` in jitted code) by importing ``scipy.linalg.cython_blas``, and so all of
    ``scipy.linalg`` when scipy is installed; ``import numba`` itself imports scipy to check
    its version. convtool's jitted code calls no BLAS and nothing of scipy, and the command's
    process runs no other numba code, so the commands hide scipy while they filter (numba then
    computes ``np.dot`` with its own loops). The library API leaves numba alone: a user's own
    numba code may need BLAS. No effect once scipy or numba's registries are loaded.
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


def debug_enabled() -> bool:
    return _state["debug"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convtool {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback instead of a one-line error.")
    ] = False,
) -> None:
    if debug:
        _state["debug"] = True
    from convtool import compiled  # here, not above: ``convtool --help`` goes without it

    # numba compiling in the foreground takes seconds: a person at a terminal is told why;
    # a script's or a log's stderr gets no line it did not ask for
    compiled.compiling_note = note if _stderr_is_terminal() else None


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (ValueError, OSError):  # closed
        return False
