"""``convtool apply``: filter images and matrices with kernels — parse, delegate, report.

The jobs are planned and run by :mod:`convtool.batch`; this module turns options into its
settings and reports notes and failures as one line each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from convtool.batch.jobs import plan_jobs
from convtool.choices import DEFAULT_COMPRESS_LEVEL, DEFAULT_MAX_PIXELS, DEFAULT_QUALITY
from convtool.cli.app import BatchReport, command
from convtool.cli.env import env_of
from convtool.cli.kernels import complete_kernel_name
from convtool.cli.options import (
    DEFAULT_ALPHA,
    DEFAULT_BORDER,
    AlphaChoice,
    BorderChoice,
    DepthChoice,
    MapChoice,
)
from convtool.cli.process import numba_without_scipy

# numpy, Pillow and the core are imported inside the functions that run a filter, so that
# ``convtool --help`` and the other commands do not load them.


@command("apply")
def apply_command(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Images (PNG, JPEG, TIFF, BMP, WebP, GIF, PPM/PGM...), matrix files (.npy, "
            ".txt, .csv), directories of images, quoted patterns ('shots/*.jpg'), or - for "
            "standard input.",
            show_default=False,
        ),
    ],
    kernel: Annotated[
        list[str],
        typer.Option(
            "-k",
            "--kernel",
            metavar="SPEC",
            help="Kernel: a built-in (sobel-x, gaussian:2...), a matrix ('0 1; 2 3') or @FILE. "
            "Repeat to apply several, in order.",
            show_default=False,
            autocompletion=complete_kernel_name,
        ),
    ],
    output: Annotated[
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
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out-dir",
            metavar="DIR",
            help="Write each result into DIR under the input's file name (created if needed); "
            "a directory's sub-folders are kept.",
            show_default=False,
        ),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive",
            "-r",
            help="Take the images of directories' sub-folders too (and let '**' in a quoted "
            "pattern reach into them).",
        ),
    ] = False,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FMT",
            help="Format for standard output (png, tiff, jpeg, npy, txt...); default: the "
            "input's, text for matrices.",
            show_default=False,
        ),
    ] = None,
    border: Annotated[
        BorderChoice,
        typer.Option("--border", help="How the image is extended past its edges."),
    ] = DEFAULT_BORDER,
    cval: Annotated[
        float,
        typer.Option("--cval", metavar="V", help="The value outside for --border constant."),
    ] = 0.0,
    convolve: Annotated[
        bool,
        typer.Option("--convolve", help="Flip each kernel (true convolution); default correlates."),
    ] = False,
    normalize: Annotated[
        bool,
        typer.Option("--normalize", help="Divide each kernel by its sum (zero-sum kernels kept)."),
    ] = False,
    scale: Annotated[
        float, typer.Option("--scale", metavar="S", help="Result = S · (X ⋆ K) + B.")
    ] = 1.0,
    bias: Annotated[
        float, typer.Option("--bias", metavar="B", help="Added to the result (0.5: mid-grey).")
    ] = 0.0,
    map: Annotated[
        MapChoice | None,
        typer.Option(
            "--map",
            help="How results become stored values: clip, abs (magnitude), rescale (min..max "
            "to full range), none (raw, float outputs). [default: none for float outputs "
            "and matrices, clip for 8/16-bit images, with a note when it clips >1%]",
            show_default=False,
        ),
    ] = None,
    gray: Annotated[
        bool, typer.Option("--gray", help="Convert to one luminance channel first (ITU-R 601-2).")
    ] = False,
    depth: Annotated[
        DepthChoice | None,
        typer.Option(
            "--depth",
            help="Output bits per sample; 32 is float (TIFF, .npy). [default: the input's, or "
            "the nearest the format holds]",
            show_default=False,
        ),
    ] = None,
    alpha: Annotated[
        AlphaChoice,
        typer.Option(
            "--alpha",
            help="auto: colour premultiplied by alpha, alpha filtered as each kernel's "
            "coverage; keep: alpha as it was; filter: alpha filtered with the kernels as they are.",
        ),
    ] = DEFAULT_ALPHA,
    quality: Annotated[
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
    ] = None,
    lossless: Annotated[
        bool,
        typer.Option(
            "--lossless",
            help="WebP in its lossless mode: every sample as filtered (--quality is then the "
            "effort). Refused for other formats.",
        ),
    ] = False,
    compress_level: Annotated[
        int,
        typer.Option(
            "--compress-level",
            metavar="N",
            min=0,
            max=9,
            help="zlib level for PNG and TIFF (0 none … 9 smallest, slowest).",
        ),
    ] = DEFAULT_COMPRESS_LEVEL,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", metavar="N", min=1, help="Threads for the core [default: all cores]."
        ),
    ] = None,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels",
            metavar="N",
            min=1,
            help="Refuse images with more pixels than N before decoding them (a TIFF or "
            ".npy above N is filtered in bands instead).",
        ),
    ] = DEFAULT_MAX_PIXELS,
    memory: Annotated[
        str | None,
        typer.Option(
            "--memory",
            metavar="LIMIT",
            help="Budget for image data (e.g. 512M, 2G): a TIFF or .npy that needs more is "
            "filtered in bands, within LIMIT. [default: stream past half the available memory]",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            envvar="CONVTOOL_SCHEDULER",
            help="Run the batch on a Dask cluster (tcp://host:8786), one file per task; "
            "workers must see the same paths. Needs convtool[dask].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Filter images or matrices with one or more kernels (cross-correlation unless --convolve).

    Examples:

      convtool apply photo.png -k sobel-x --map abs -o edges.png

      convtool apply in.jpg -k '-2 -1 0; -1 0 1; 0 1 2' --bias 0.5 -o relief.jpg

      convtool apply photo.png -k gaussian:2 -k laplacian --map abs -o log.png

      convtool apply shots/*.jpg -k box:5 --out-dir blurred/

      convtool apply shots/*.png -k sobel-y -o 'edges/{stem}-sobel.png'

      convtool apply shots --recursive -k sharpen --out-dir sharp/

      convtool apply - -k box:3 <a.png | convtool apply - -k laplacian >b.png

      convtool apply x.txt -k '0 1; 2 3' --border valid -o -

      convtool apply scan.tif -k gaussian:3 --memory 512M -o blurred.tif

      convtool apply *.tif -k sobel-x --out-dir out/ --scheduler tcp://head:8786
    """
    from convtool.batch.pipeline import Notes, Settings, file_behind, run_batch, run_one
    from convtool.filtering import Recipe
    from convtool.imaging import format_by_name
    from convtool.kernels import load_kernel
    from convtool.stream import parse_bytes

    recipe = Recipe(
        kernels=tuple(load_kernel(spec) for spec in kernel),
        border=border.value,
        cval=cval,
        convolve=convolve,
        normalize=normalize,
        scale=scale,
        bias=bias,
        alpha=alpha.value,
        threads=threads,
    )
    stdout_format = format_by_name(format) if format is not None else None
    target_dir = Path(out_dir) if out_dir is not None else None
    env = env_of(ctx)
    jobs = plan_jobs(
        inputs, output, target_dir, recursive=recursive, stdout_is_terminal=env.stdout_isatty
    )
    settings = Settings(
        recipe=recipe,
        stdout_format=stdout_format,
        depth=int(depth.value) if depth is not None else None,
        map=map.value if map is not None else None,
        gray=gray,
        quality=quality,
        lossless=lossless,
        compress_level=compress_level,
        max_pixels=max_pixels,
        memory=parse_bytes(memory) if memory is not None else None,
        stdout_file=file_behind(env.stdout) if jobs[0].target is None else None,
    )
    if normalize:
        for k in recipe.kernels:
            if k.is_zero_sum:
                env.note(
                    f"kernel {k.name!r} sums to 0, so --normalize leaves it as it is (dividing "
                    "by its sum would be dividing by zero)"
                )
    report = BatchReport(env, len(jobs))
    notes = Notes(env.note, batch=len(jobs) > 1)
    if scheduler:
        from convtool.batch.cluster import run_on_cluster

        with report.progress() as advance:
            failed = run_on_cluster(
                jobs, settings, scheduler, notes=notes, failed=report.failed, advance=advance
            )
        report.finish(failed)
        return
    if jobs[0].source == "-" and env.stdin_isatty:
        env.note(
            "reading standard input from the terminal: type a matrix, rows of numbers, and end "
            "with Ctrl-D (an image is piped: convtool apply - ... < in.png)"
        )
    with numba_without_scipy():
        if len(jobs) == 1:
            run_one(jobs[0], settings, notes)
            return
        with report.progress() as advance:
            failed = run_batch(jobs, settings, notes=notes, failed=report.failed, advance=advance)
    report.finish(failed)
