"""The ``convtool`` command: parse, delegate to the API, report.

``main`` is the console entry point: it maps usage errors, Ctrl-C and a closed pipe to one
stderr line (or silence) and an exit code, so no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys

import typer

from convtool.cli import apply as _apply  # noqa: F401  (registers the command)
from convtool.cli import kernels as _kernels  # noqa: F401  (registers the command)
from convtool.cli import learn as _learn  # noqa: F401  (registers the command)
from convtool.cli._app import app, debug_enabled, echo_error

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run convtool with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    try:
        result = app(args=argv, prog_name="convtool", standalone_mode=False)
    except typer.Abort:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        code = getattr(exc, "exit_code", None)
        message = getattr(exc, "format_message", None)
        if debug_enabled() or not isinstance(code, int) or message is None:
            raise
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            return 0
        echo_error(message())
        return code
    _flush_stdout()
    return result if isinstance(result, int) else 0


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """After the reader closed the pipe: point stdout at devnull so exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
