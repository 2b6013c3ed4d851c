"""The process as the command sees it: its standard streams, whether they are terminals, and
the run's switches — read once in :func:`convtool.cli.main` and passed down."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO, Any

import typer

from convtool import compiled
from convtool.errors import one_line

DEBUG_VARIABLE = "CONVTOOL_DEBUG"


@dataclass(frozen=True)
class Env:
    """Standard streams, their ``isatty``, ``--debug`` and the compile policy of one run."""

    stdin: IO[Any]
    stdout: IO[Any]
    stderr: IO[Any]
    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    debug: bool = False
    compile_policy: str = "background"
    """When numba compiles (see :mod:`convtool.compiled`): a command ends soon, so by default
    it gains nothing from waiting for numba."""

    @classmethod
    def from_process(cls, argv: list[str] | None = None) -> Env:
        """This process's streams; debug when ``CONVTOOL_DEBUG`` is set or ``argv`` (default:
        ``sys.argv[1:]``) asks for ``--debug`` before any ``--``."""
        args = sys.argv[1:] if argv is None else argv
        options = args[: args.index("--") if "--" in args else None]
        return cls(
            stdin=sys.stdin,
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            debug=bool(os.environ.get(DEBUG_VARIABLE)) or "--debug" in options,
            compile_policy=compiled.policy_from_environment(default="background"),
        )

    def error(self, message: str) -> None:
        """One ``convtool: error:`` line on stderr (see :func:`convtool.errors.one_line`)."""
        self._line(f"convtool: error: {one_line(message)}")

    def note(self, message: str) -> None:
        """A one-line note on stderr for something convtool decided for the user."""
        self._line(f"convtool: note: {one_line(message)}")

    def _line(self, line: str) -> None:
        """One line on stderr. Once its reader has gone (``2>&1 | head -c 5``), the lines after
        are dropped and the command carries on: a batch still writes every file it can."""
        try:
            typer.echo(line, file=self.stderr)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)  # what is still buffered, and every later line, goes nowhere
            finally:
                os.close(devnull)


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False


def env_of(ctx: typer.Context) -> Env:
    """The Env of the command run in ``ctx``: the one :func:`convtool.cli.main` handed Typer,
    or this process's when Typer was called without it (as ``CliRunner`` calls it)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Env):
        root.obj = Env.from_process([])
    return root.obj
