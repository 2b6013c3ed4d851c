"""``convtool kernels``: list the built-ins, print one as a kernel file, or compose a chain."""

from __future__ import annotations

from typing import Annotated

import typer

from convtool.cli.app import command
from convtool.cli.env import env_of
from convtool.errors import UsageError


def complete_kernel_name(incomplete: str) -> list[str]:
    """The built-in names that start with what was typed (shell completion of ``kernels``)."""
    from convtool.kernels.builtins import BUILTINS

    return [name for name in BUILTINS if name.startswith(incomplete.lower())]


@command("kernels")
def kernels_command(
    ctx: typer.Context,
    specs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SPEC",
            help="A built-in with optional arguments (e.g. gaussian:sigma=2) or any kernel spec; "
            "several: the one kernel equal to applying them in order.",
            autocompletion=complete_kernel_name,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the kernel to FILE (.txt, .json, .npy)."
        ),
    ] = None,
) -> None:
    """List the built-in kernels, or print one in the text format that -k @FILE reads.

    Several kernels print the single kernel equal to applying them in order (their
    receptive field), with a note on its size.

    Examples:

      convtool kernels

      convtool kernels sobel-x

      convtool kernels gaussian:sigma=1.5,size=7 > g.txt

      convtool apply in.png -k @g.txt -o out.png

      convtool kernels box:3 box:3 laplacian -o chain.txt
    """
    from convtool.kernels.builtins import BUILTINS
    from convtool.kernels.compose import compose_kernels, describe_composition
    from convtool.kernels.files import format_kernel, save_kernel
    from convtool.kernels.spec import load_any_kernel

    env = env_of(ctx)
    if not specs:
        if output is not None:
            raise UsageError(
                "-o needs a kernel to write: name one, e.g. convtool kernels sobel-x -o k.txt"
            )
        width = max(len(name) for name in BUILTINS)
        for name, entry in BUILTINS.items():
            typer.echo(f"{name:<{width}}  {entry.summary}", file=env.stdout)
        return
    kernels = [load_any_kernel(spec) for spec in specs]
    kernel = compose_kernels(kernels) if len(kernels) > 1 else kernels[0]
    if len(kernels) > 1:
        env.note(describe_composition(kernels))
    if output is not None:
        save_kernel(kernel, output)
        return
    typer.echo(format_kernel(kernel), file=env.stdout, nl=False)
