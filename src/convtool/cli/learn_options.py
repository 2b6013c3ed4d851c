"""The arguments and options of ``convtool learn``, as Typer declares them (name, metavar,
help); :mod:`convtool.cli.learn` takes them in this order, with their defaults."""

from __future__ import annotations

from typing import Annotated

import typer

from convtool.choices import DEFAULT_EPOCHS
from convtool.cli.options import MethodChoice

Files = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT TARGET",
        help="Pairs of images or matrix files: each TARGET is what a filter made of INPUT "
        "(same size, or smaller by the kernel size − 1). - reads one of them from standard "
        "input.",
        show_default=False,
    ),
]

Size = Annotated[
    str,
    typer.Option(
        "--size",
        metavar="HxW|N",
        help="Kernel size to fit: 3x3, 1x2, 5 (= 5x5)...",
        show_default=False,
    ),
]

Output = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--output",
        metavar="KERNEL_FILE",
        help="Where the kernel goes: .txt (default format), .json, .npy (weights only), or "
        "- for standard output (also when absent).",
        show_default=False,
    ),
]

Bias = Annotated[bool, typer.Option("--bias", help="Fit a constant b as well: Y ≈ X ⋆ K + b.")]

Method = Annotated[
    MethodChoice,
    typer.Option(
        "--method",
        help="lstsq: exact least squares; gd: the textbook's gradient descent.",
    ),
]

Lr = Annotated[
    float | None,
    typer.Option(
        "--lr",
        metavar="RATE",
        help="gd learning rate [default: 1/L, L the largest eigenvalue of the loss's "
        "Hessian, a step that always descends].",
        show_default=False,
    ),
]

Epochs = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        metavar="N",
        help=f"gd steps [default: {DEFAULT_EPOCHS}].",
        show_default=False,
    ),
]

Seed = Annotated[
    int | None,
    typer.Option(
        "--seed",
        metavar="S",
        help="gd: seed of the random start N(0, 0.01²) [default: a fresh one].",
        show_default=False,
    ),
]

Origin = Annotated[
    str | None,
    typer.Option(
        "--origin",
        metavar="DY,DX",
        help="The kernel's anchor, as apply --origin: where a same-size target was aligned.",
        show_default=False,
    ),
]

Convolve = Annotated[
    bool,
    typer.Option(
        "--convolve", help="Give the kernel in convolution orientation (for apply --convolve)."
    ),
]

Gray = Annotated[
    bool,
    typer.Option("--gray", help="Convert both images to one luminance channel first."),
]

KeepClipped = Annotated[
    bool,
    typer.Option(
        "--keep-clipped",
        help="Keep target samples at 0 or the maximum of 8/16-bit images (left out by "
        "default as clipped).",
    ),
]

JsonReport = Annotated[
    bool,
    typer.Option("--json", help="Print the report as JSON on stdout (needs -o FILE)."),
]

MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        metavar="N",
        min=1,
        help="Refuse images with more pixels than N before decoding them.",
    ),
]

AllowLong = Annotated[
    bool,
    typer.Option(
        "--allow-long",
        help="Run a fit estimated to take more than ten minutes (refused otherwise).",
    ),
]

Channels = Annotated[
    str,
    typer.Option(
        "--channels",
        metavar="shared|per|mix",
        help="shared: one kernel for every channel; per: a kernel and bias per channel; "
        "mix: a full layer, C_out x C_in kernels and a bias per output.",
    ),
]
