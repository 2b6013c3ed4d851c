"""The ``convtool`` command: parse, delegate to the API, report.

``main`` is the console entry point: it maps usage errors, Ctrl-C, SIGTERM and a closed pipe
to one stderr line (or silence) and an exit code, so no traceback reaches the user.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import suppress
from typing import NoReturn

import typer

from convtool.cli import apply as _apply  # noqa: F401  (registers the command)
from convtool.cli import kernels as _kernels  # noqa: F401  (registers the command)
from convtool.cli import learn as _learn  # noqa: F401  (registers the command)
from convtool.cli.app import app, unexpected
from convtool.cli.env import Env
from convtool.cli.process import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Terminated,
    library_logs_silenced,
    reopen_closed_streams,
    signals_end_the_run,
    silence_stdout,
)

__all__ = ["Env", "app", "entry", "main"]


def main(argv: list[str] | None = None, env: Env | None = None) -> int:
    """Run convtool with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    ``env`` is the process as the command sees it (default: this process's, its closed
    standard streams reopened first). 0 success; 1 an error (one ``convtool: error:`` line; in
    a batch, any input failed); 2 a usage error; 130 Ctrl-C (SIGINT); 143 SIGTERM. A closed
    pipe on stdout ends quietly with 0.
    """
    if env is None:
        reopen_closed_streams()
        env = Env.from_process(argv)
    try:
        with signals_end_the_run(), warnings.catch_warnings(), library_logs_silenced():
            if not env.debug:
                # What the user must know is a note or an error line; a Python warning from a
                # library (numpy overflow in an extreme --scale...) would add raw lines.
                warnings.simplefilter("ignore")
            return _run(argv, env)
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Terminated:
        return EXIT_SIGTERM


def entry() -> NoReturn:
    """The console command: :func:`main` on ``sys.argv``, then the process ends at once.

    By then every output is complete and renamed into place, every temporary file removed, the
    progress bar and a Dask client closed, and stdout and stderr are flushed here: what the
    interpreter's shutdown would still do — tear down numba's thread pool and the modules —
    changes nothing, so it is skipped (``os._exit``). ``main`` itself returns, for callers in
    the same process (tests, ``CliRunner``).
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _run(argv: list[str] | None, env: Env) -> int:
    try:
        result = app(args=argv, prog_name="convtool", standalone_mode=False, obj=env)
    except typer.Abort:
        return EXIT_SIGINT
    except BrokenPipeError:
        silence_stdout(env.stdout)
        return 0
    except Exception as exc:
        return _failed(exc, env)
    if not _flush_stdout(env):
        return 1
    return result if isinstance(result, int) else 0


def _failed(exc: Exception, env: Env) -> int:
    """The exit code of an exception out of Typer, after its one line (or the help)."""
    code = getattr(exc, "exit_code", None)
    message = getattr(exc, "format_message", None)
    if env.debug:
        raise exc
    if not isinstance(code, int) or message is None:
        if isinstance(exc, OSError):
            silence_stdout(env.stdout)  # a full disk: drop what is still buffered, quietly
        env.error(unexpected(exc))
        return 1
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help(), file=env.stdout)
        return 0
    env.error(message())
    return code


def _flush_stdout(env: Env) -> bool:
    """Flush what the command printed; False (after one error line) if it cannot be written."""
    try:
        env.stdout.flush()
    except BrokenPipeError:
        silence_stdout(env.stdout)
    except OSError as exc:
        silence_stdout(env.stdout)
        env.error(f"standard output: cannot be written ({exc.strerror or exc})")
        return False
    return True
