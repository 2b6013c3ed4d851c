"""``convtool kernels``: list the built-ins, or print one as a kernel file."""

from __future__ import annotations

from typing import Annotated

import typer

from convtool.cli.app import command
from convtool.cli.env import env_of


def complete_kernel_name(incomplete: str) -> list[str]:
    """The built-in names that start with what was typed (shell completion of ``kernels``)."""
    from convtool.kernels.builtins import BUILTINS

    return [name for name in BUILTINS if name.startswith(incomplete.lower())]


@command("kernels")
def kernels_command(
    ctx: typer.Context,
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME[:ARGS]",
            help="A built-in with optional arguments (e.g. gaussian:sigma=2) or any kernel spec.",
            autocompletion=complete_kernel_name,
        ),
    ] = None,
) -> None:
    """List the built-in kernels, or print one in the text format that -k @FILE reads.

    Examples:

      convtool kernels

      convtool kernels sobel-x

      convtool kernels gaussian:sigma=1.5,size=7 > g.txt

      convtool apply in.png -k @g.txt -o out.png
    """
    from convtool.kernels.builtins import BUILTINS
    from convtool.kernels.files import format_kernel
    from convtool.kernels.spec import load_kernel

    stdout = env_of(ctx).stdout

    if spec is None:
        width = max(len(name) for name in BUILTINS)
        for name, entry in BUILTINS.items():
            typer.echo(f"{name:<{width}}  {entry.summary}", file=stdout)
        return
    typer.echo(format_kernel(load_kernel(spec)), file=stdout, nl=False)
