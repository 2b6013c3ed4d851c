"""The arguments and options of ``convtool apply``, as Typer declares them (name, metavar,
help); :mod:`convtool.cli.apply` takes them in this order, with their defaults."""

from __future__ import annotations

from typing import Annotated

import typer

from convtool.choices import DEFAULT_QUALITY
from convtool.cli.kernels import complete_kernel_name
from convtool.cli.options import AlphaChoice, BorderChoice, CombineChoice, DepthChoice, MapChoice

Inputs = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT",
        help="Images (PNG, JPEG, TIFF, BMP, WebP, GIF, PPM/PGM...), matrix files (.npy, "
        ".txt, .csv), directories of images, quoted patterns ('shots/*.jpg'), or - for "
        "standard input.",
        show_default=False,
    ),
]

Kernel = Annotated[
    list[str],
    typer.Option(
        "-k",
        "--kernel",
        metavar="SPEC",
        help="Kernel: a built-in (sobel-x, gaussian:2...), a matrix ('0 1; 2 3') or @FILE "
        "(also per-channel kernels or a layer mixing channels). Repeat to apply several, "
        "in order.",
        show_default=False,
        autocompletion=complete_kernel_name,
    ),
]

Output = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="Output file (its extension picks the format), - for standard output, or "
        "with several inputs a template with {stem}, {name}, {ext}, {dir} (the input's "
        "folder).",
        show_default=False,
    ),
]

OutDir = Annotated[
    str | None,
    typer.Option(
        "--out-dir",
        metavar="DIR",
        help="Write each result into DIR under the input's file name (created if needed); "
        "a directory's sub-folders are kept.",
        show_default=False,
    ),
]

Recursive = Annotated[
    bool,
    typer.Option(
        "--recursive",
        "-r",
        help="Take the images of directories' sub-folders too (and let '**' in a quoted "
        "pattern reach into them).",
    ),
]

Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FMT",
        help="Format for standard output (png, tiff, jpeg, npy, txt...); default: the "
        "input's, text for matrices.",
        show_default=False,
    ),
]

Border = Annotated[
    BorderChoice,
    typer.Option("--border", help="How the image is extended past its edges."),
]

Cval = Annotated[
    float,
    typer.Option("--cval", metavar="V", help="The value outside for --border constant."),
]

Convolve = Annotated[
    bool,
    typer.Option("--convolve", help="Flip each kernel (true convolution); default correlates."),
]

Combine = Annotated[
    CombineChoice | None,
    typer.Option(
        "--combine",
        help="Apply the -k kernels side by side to the input and combine their responses "
        "(magnitude: √Σr²) instead of chaining them.",
        show_default=False,
    ),
]

Origin = Annotated[
    str | None,
    typer.Option(
        "--origin",
        metavar="DY,DX",
        help="Move each kernel's anchor from its centre cell by DY rows, DX columns "
        "(scipy's origin).",
        show_default=False,
    ),
]

Normalize = Annotated[
    bool,
    typer.Option("--normalize", help="Divide each kernel by its sum (zero-sum kernels kept)."),
]

Scale = Annotated[float, typer.Option("--scale", metavar="S", help="Result = S · (X ⋆ K) + B.")]

Bias = Annotated[
    float, typer.Option("--bias", metavar="B", help="Added to the result (0.5: mid-grey).")
]

Map = Annotated[
    MapChoice | None,
    typer.Option(
        "--map",
        help="How results become stored values: clip, abs (magnitude), rescale (min..max "
        "to full range), none (raw, float outputs). [default: none for float outputs "
        "and matrices, clip for 8/16-bit images, with a note when it clips >1%]",
        show_default=False,
    ),
]

Gray = Annotated[
    bool, typer.Option("--gray", help="Convert to one luminance channel first (ITU-R 601-2).")
]

Depth = Annotated[
    DepthChoice | None,
    typer.Option(
        "--depth",
        help="Output bits per sample; 32 is float (TIFF, .npy). [default: the input's, or "
        "the nearest the format holds]",
        show_default=False,
    ),
]

Alpha = Annotated[
    AlphaChoice,
    typer.Option(
        "--alpha",
        help="auto: colour premultiplied by alpha, alpha filtered as each kernel's "
        "coverage; keep: alpha as it was; filter: alpha filtered with the kernels as they are.",
    ),
]

Quality = Annotated[
    int | None,
    typer.Option(
        "--quality",
        metavar="Q",
        min=1,
        max=100,
        help=f"JPEG/WebP/AVIF quality (1-100). [default: {DEFAULT_QUALITY}; a JPEG "
        "written from a JPEG keeps its quantization tables and subsampling]",
        show_default=False,
    ),
]

Lossless = Annotated[
    bool,
    typer.Option(
        "--lossless",
        help="WebP in its lossless mode: every sample as filtered (--quality is then the "
        "effort). Refused for other formats.",
    ),
]

CompressLevel = Annotated[
    int | None,
    typer.Option(
        "--compress-level",
        metavar="N",
        min=0,
        max=9,
        help="zlib level for PNG and TIFF (0 none … 9 smallest, slowest) "
        "[default: 4; a TIFF from a TIFF keeps its compression].",
    ),
]

Threads = Annotated[
    int | None,
    typer.Option(
        "--threads", metavar="N", min=1, help="Threads for the core [default: all cores]."
    ),
]

MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        metavar="N",
        min=1,
        help="Refuse images with more pixels than N before decoding them (a TIFF or "
        ".npy above N is filtered in bands instead).",
    ),
]

Memory = Annotated[
    str | None,
    typer.Option(
        "--memory",
        metavar="LIMIT",
        help="Budget for image data (e.g. 512M, 2G): a TIFF or .npy that needs more is "
        "filtered in bands, within LIMIT. [default: stream past half the available memory]",
        show_default=False,
    ),
]

Page = Annotated[
    str | None,
    typer.Option(
        "--page",
        metavar="N[-M]",
        help="Pages of a multi-page TIFF or frames of an animation to filter, from 0 as "
        "ImageMagick's in.tif[0] (2, 0-3, 0,5). [default: all, into one file]",
        show_default=False,
    ),
]

Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        envvar="CONVTOOL_SCHEDULER",
        help="Run the batch on a Dask cluster (tcp://host:8786), one file per task; "
        "workers must see the same paths. Needs convtool[dask].",
        show_default=False,
    ),
]
