"""``convtool apply``: filter images and matrices with kernels — parse, delegate, report.

The jobs are planned and run by :mod:`convtool.batch`; this module turns options into its
settings and reports notes and failures as one line each.
"""

from __future__ import annotations

from pathlib import Path

import typer

from convtool.batch.jobs import plan_jobs
from convtool.choices import DEFAULT_MAX_PIXELS
from convtool.cli import apply_options as opts
from convtool.cli.app import BatchReport, command
from convtool.cli.env import env_of
from convtool.cli.options import DEFAULT_ALPHA, DEFAULT_BORDER
from convtool.cli.process import numba_without_scipy

# numpy, Pillow and the core are imported inside the functions that run a filter, so that
# ``convtool --help`` and the other commands do not load them.


@command("apply")
def apply_command(
    ctx: typer.Context,
    inputs: opts.Inputs,
    kernel: opts.Kernel,
    output: opts.Output = None,
    out_dir: opts.OutDir = None,
    recursive: opts.Recursive = False,
    format: opts.Format = None,
    border: opts.Border = DEFAULT_BORDER,
    cval: opts.Cval = 0.0,
    convolve: opts.Convolve = False,
    combine: opts.Combine = None,
    origin: opts.Origin = None,
    normalize: opts.Normalize = False,
    scale: opts.Scale = 1.0,
    bias: opts.Bias = 0.0,
    map: opts.Map = None,
    gray: opts.Gray = False,
    depth: opts.Depth = None,
    alpha: opts.Alpha = DEFAULT_ALPHA,
    quality: opts.Quality = None,
    lossless: opts.Lossless = False,
    compress_level: opts.CompressLevel = None,
    threads: opts.Threads = None,
    max_pixels: opts.MaxPixels = DEFAULT_MAX_PIXELS,
    memory: opts.Memory = None,
    page: opts.Page = None,
    scheduler: opts.Scheduler = None,
) -> None:
    """Filter images or matrices with one or more kernels (cross-correlation unless --convolve).

    Examples:

      convtool apply photo.png -k sobel-x --map abs -o edges.png

      convtool apply in.jpg -k '-2 -1 0; -1 0 1; 0 1 2' --bias 0.5 -o relief.jpg

      convtool apply photo.png -k gaussian:2 -k laplacian --map abs -o log.png

      convtool apply in.png -k sobel-x -k sobel-y --combine magnitude -o g.png

      convtool apply shots/*.jpg -k box:5 --out-dir blurred/

      convtool apply shots/*.png -k sobel-y -o 'edges/{stem}-sobel.png'

      convtool apply shots --recursive -k sharpen --out-dir sharp/

      convtool apply - -k box:3 <a.png | convtool apply - -k laplacian >b.png

      convtool apply x.txt -k '0 1; 2 3' --border valid -o -

      convtool apply photo.png -k @rgb-to-grey.txt -o grey.png

      convtool apply scan.tif -k gaussian:3 --memory 512M -o blurred.tif

      convtool apply *.tif -k sobel-x --out-dir out/ --scheduler tcp://head:8786
    """
    from convtool.batch.pipeline import Notes, Settings, file_behind, run_batch, run_one
    from convtool.filtering.chain import Recipe
    from convtool.io.formats import format_by_name
    from convtool.kernels.origin import parse_origin
    from convtool.kernels.spec import load_any_kernel
    from convtool.kernels.value import Kernel
    from convtool.stream.sizes import parse_bytes

    recipe = Recipe(
        kernels=tuple(load_any_kernel(spec) for spec in kernel),
        border=border.value,
        cval=cval,
        convolve=convolve,
        normalize=normalize,
        scale=scale,
        bias=bias,
        alpha=alpha.value,
        threads=threads,
        origin=parse_origin(origin) if origin is not None else None,
        combine=combine.value if combine is not None else None,
    )
    if page is not None:
        from convtool.io.pages import parse_pages

        parse_pages(page)  # a mistyped --page is told before any file is read
    stdout_format = format_by_name(format) if format is not None else None
    target_dir = Path(out_dir) if out_dir is not None else None
    env = env_of(ctx)
    if scheduler:
        from convtool.batch.cluster import check_address

        check_address(scheduler)  # before any folder is made
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
        pages=page,
    )
    if normalize:
        for k in recipe.kernels:
            if isinstance(k, Kernel) and k.is_zero_sum:
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
