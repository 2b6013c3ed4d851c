"""The Typer application, its global options, and the one place errors become stderr lines."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any, TypeVar

import typer

from convtool import __version__, compiled
from convtool.cli.coercion import QuickCommand, QuickGroup
from convtool.cli.env import Env, env_of
from convtool.errors import ConvtoolError, quoted

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="convtool",
    cls=QuickGroup,
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


def command(name: str) -> Callable[[F], F]:
    """``app.command(name)`` with convtool's coercion (see :mod:`convtool.cli.coercion`) and its
    errors reported as one line each."""

    def register(function: F) -> F:
        app.command(name, cls=QuickCommand)(reports_errors(function))
        return function

    return register


def unexpected(exc: BaseException) -> str:
    """The error line's text for an exception convtool did not raise on purpose."""
    if isinstance(exc, MemoryError):
        return (
            "out of memory; free memory, or work on smaller images (--max-pixels refuses large "
            "ones before decoding)"
        )
    if isinstance(exc, OSError) and exc.strerror:
        # I/O convtool does not wrap itself: the lines a command prints (kernels, reports)
        what = (
            f"{quoted(exc.filename)}: cannot be used" if exc.filename else "cannot write the output"
        )
        return f"{what} ({exc.strerror})"
    return (
        f"unexpected {type(exc).__name__}: {exc}; this is a bug in convtool: run again with "
        "--debug for the traceback, and report it"
    )


def reports_errors(command: F) -> F:
    """Turn a ConvtoolError raised by a command (which takes ``ctx``) into one stderr line
    and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConvtoolError as exc:
            env = env_of(kwargs["ctx"])
            if env.debug:
                raise
            env.error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


class BatchReport:
    """A batch's failures told as the command tells them: one error line per input (named
    when there are several), a summary line, then exit code 1; a progress bar on a terminal."""

    def __init__(self, env: Env, total: int) -> None:
        self.env = env
        self.total = total

    def failed(self, source: str, error: Exception | str) -> None:
        """One input failed: an exception raised here, or a worker's message."""
        from convtool.batch.pipeline import about

        if isinstance(error, Exception):
            if self.env.debug:
                raise error
            # a ConvtoolError says it all; else out of memory, or a bug: the others run
            error = str(error) if isinstance(error, ConvtoolError) else unexpected(error)
        self.env.error(about(source, error) if self.total > 1 else error)

    def finish(self, failed: list[str]) -> None:
        """Exit 1 if any input failed, after a summary line naming the first few."""
        if not failed:
            return
        if self.total > 1:
            shown = ", ".join(map(quoted, failed[:3])) + (", ..." if len(failed) > 3 else "")
            self.env.error(f"{len(failed)} of {self.total} inputs failed ({shown})")
        raise typer.Exit(1)

    @contextmanager
    def progress(self) -> Iterator[Callable[[], None]]:
        """A rich progress bar on stderr when it is a terminal (else nothing); its advance."""
        if not self.env.stderr_isatty:
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(file=self.env.stderr), transient=False) as bar:
            task = bar.add_task("filtering", total=self.total)
            yield lambda: bar.advance(task)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convtool {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a traceback instead of a one-line error.")
    ] = False,
) -> None:
    env = env_of(ctx)
    if debug and not env.debug:
        env = ctx.find_root().obj = replace(env, debug=True)
    # numba compiling in the foreground takes seconds: a person at a terminal is told why;
    # a script's or a log's stderr gets no line it did not ask for
    note = env.note if env.stderr_isatty else None
    ctx.with_resource(compiled.configured(policy=env.compile_policy, note=note, short=True))
