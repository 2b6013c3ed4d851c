"""``convtool apply``: filter images and matrices with kernels — parse, delegate, report.

The arithmetic lives in :mod:`convtool.filtering` (the kernel chain) and
:mod:`convtool.imaging` (reading, the pixel policy, writing); this module turns options into
calls (where each result goes is planned by :mod:`convtool.batch`) and reports errors as
one line each.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convtool.batch.jobs import Job, make_directory, plan_jobs
from convtool.choices import DEFAULT_COMPRESS_LEVEL, DEFAULT_MAX_PIXELS, DEFAULT_QUALITY
from convtool.cli.app import (
    app,
    debug_enabled,
    echo_error,
    note,
    numba_without_scipy,
    reports_errors,
    unexpected,
)
from convtool.cli.kernels import complete_kernel_name
from convtool.errors import ConvtoolError, ImageError, UsageError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from convtool.filtering import Recipe
    from convtool.imaging import OutputPlan, Picture

# numpy, Pillow and the core are imported inside the functions that run a filter, so that
# ``convtool --help`` and the other commands do not load them.


class BorderChoice(str, Enum):
    reflect = "reflect"
    mirror = "mirror"
    nearest = "nearest"
    wrap = "wrap"
    constant = "constant"
    valid = "valid"


class MapChoice(str, Enum):
    clip = "clip"
    abs = "abs"
    rescale = "rescale"
    none = "none"


class DepthChoice(str, Enum):
    d8 = "8"
    d16 = "16"
    d32 = "32"


class AlphaChoice(str, Enum):
    auto = "auto"
    keep = "keep"
    filter = "filter"


@app.command("apply")
@reports_errors
def apply_command(
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
    ] = BorderChoice.reflect,
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
    ] = AlphaChoice.auto,
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
    jobs = plan_jobs(
        inputs, output, Path(out_dir) if out_dir is not None else None, recursive=recursive
    )
    settings = _Settings(
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
    )
    if normalize:
        for k in recipe.kernels:
            if k.is_zero_sum:
                note(
                    f"kernel {k.name!r} sums to 0, so --normalize leaves it as it is (dividing "
                    "by its sum would be dividing by zero)"
                )
    if scheduler:
        _run_on_cluster(jobs, settings, scheduler)
        return
    if jobs[0].source == "-" and _stdin_is_terminal():
        note(
            "reading standard input from the terminal: type a matrix, rows of numbers, and end "
            "with Ctrl-D (an image is piped: convtool apply - ... < in.png)"
        )
    with numba_without_scipy():
        if len(jobs) == 1:
            _run(jobs[0], settings, _Notes())
        else:
            _run_batch(jobs, settings)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed
        return False


@dataclass(frozen=True)
class _Settings:
    recipe: Recipe
    stdout_format: str | None
    depth: int | None
    map: str | None
    gray: bool
    quality: int | None
    compress_level: int
    max_pixels: int
    memory: int | None = None
    lossless: bool = False


class _Notes:
    """Print each distinct note once; in a batch, name the input it is about."""

    def __init__(self, batch: bool = False) -> None:
        self.batch = batch
        self.seen: set[str] = set()

    def __call__(self, source: str, message: str) -> None:
        if self.batch:
            message = _about(source, message)
        if message not in self.seen:
            self.seen.add(message)
            note(message)


def _run(job: Job, settings: _Settings, notes: _Notes) -> None:
    """Read, plan, filter, encode and write one input."""
    picture = _read(job, settings)
    if picture is None:
        _run_streamed(job, settings, notes)
        return
    for message in picture.notes:
        notes(job.source, message)
    picture, plan = _filter(job, settings, picture)
    _write(job, _encode(job, picture, plan, settings), plan, notes)


def _read(job: Job, settings: _Settings) -> Picture | None:
    """The input read (as samples where it has them); None for an input to filter in bands."""
    from convtool.imaging import read_picture
    from convtool.stream_apply import should_stream

    if _is_file(job.source) and should_stream(
        job.source, memory=settings.memory, max_pixels=settings.max_pixels
    ):
        return None
    return read_picture(
        job.source, gray=settings.gray, max_pixels=settings.max_pixels, samples=True
    )


def _is_file(source: str) -> bool:
    """Whether ``source`` names a regular file: one that can be probed, then read again (a
    pipe such as ``<(...)`` or /dev/stdin is read once, whole; a missing file is reported by
    the reader)."""
    return source != "-" and os.path.isfile(source)


def _filter(job: Job, settings: _Settings, picture: Picture) -> tuple[Picture, OutputPlan]:
    """The output planned, and the picture filtered for it (the input's planes dropped)."""
    from convtool.clipping import filter_for_output
    from convtool.imaging import format_for_path, plan_output

    if job.target is None:
        fmt = settings.stdout_format or ("TXT" if picture.is_matrix else picture.format)
        if settings.stdout_format is None:
            _check_writable(fmt, job.source)
    else:
        fmt = format_for_path(job.target)
        if settings.stdout_format is not None and settings.stdout_format != fmt:
            raise UsageError(
                f"--format {settings.stdout_format.lower()} contradicts the output file "
                f"{str(job.target)!r}; the extension picks a file's format (--format is for -o -)"
            )
    plan = plan_output(
        picture, fmt, depth=settings.depth, map=settings.map, lossless=settings.lossless
    )
    if job.target is None and settings.stdout_format is None:
        redirected = _redirected_elsewhere(plan.format)
        if redirected is not None:
            plan = replace(plan, notes=(*plan.notes, redirected))
    return filter_for_output(picture, settings.recipe, plan)


def _redirected_elsewhere(fmt: str) -> str | None:
    """A note when standard output is a file whose extension names another format than the
    one written (``convtool apply in.png -k K > out.jpg`` writes PNG bytes into out.jpg)."""
    from convtool.imaging import format_for_path

    try:
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")  # Linux; elsewhere none
        if not os.path.isfile(target):
            return None
        named = format_for_path(target)
    except (OSError, ValueError, AttributeError, UsageError):  # no file descriptor: no note
        return None
    if named == fmt:
        return None
    return (
        f"standard output is {target}, but {fmt} is written there (the input's format): name "
        f"the output with -o {os.path.basename(target)}, or choose one with --format"
    )


def _check_writable(fmt: str, source: str) -> None:
    """Standard output takes the input's format: say so when convtool cannot write that one."""
    from convtool.imaging import format_by_name

    try:
        format_by_name(fmt)
    except UsageError:
        raise UsageError(
            f"{'standard input' if source == '-' else source} is {fmt}, which convtool cannot "
            "write, and standard output takes the input's format: choose one with --format "
            "(png, tiff, jpeg, webp, bmp, gif, ppm, npy, txt or csv)"
        ) from None


def _encode(job: Job, picture: Picture, plan: OutputPlan, settings: _Settings) -> bytes:
    from convtool.imaging import encode

    try:
        return encode(
            picture,
            plan,
            quality=settings.quality,
            compress_level=settings.compress_level,
            threads=settings.recipe.threads,
        )
    except ImageError as exc:  # the encoder's refusal, about the output: name it
        raise ImageError(f"{job.target or 'standard output'}: {exc}") from None


def _write(job: Job, payload: bytes, plan: OutputPlan, notes: _Notes) -> None:
    from convtool.imaging import write_output

    if job.target is not None:
        make_directory(job.target.parent)
    write_output(payload, job.target)
    for message in plan.notes:
        notes(job.source, message)


def _run_streamed(job: Job, settings: _Settings, notes: _Notes) -> None:
    """One input too large for memory, filtered band by band (see convtool.stream_apply)."""
    from convtool.imaging import format_for_path
    from convtool.stream_apply import run_streamed

    fmt = format_for_path(job.target) if job.target is not None else ""
    if job.target is not None and settings.stdout_format not in (None, fmt):
        raise UsageError(
            f"--format {str(settings.stdout_format).lower()} contradicts the output file "
            f"{str(job.target)!r}; the extension picks a file's format (--format is for -o -)"
        )
    if job.target is not None:
        make_directory(job.target.parent)
    run_streamed(
        job.source,
        job.target,
        fmt,
        recipe=settings.recipe,
        depth=settings.depth,
        map=settings.map,
        gray=settings.gray,
        compress_level=settings.compress_level,
        memory=settings.memory,
        notes=notes,
        lossless=settings.lossless,
    )


def _run_batch(jobs: list[Job], settings: _Settings) -> None:
    """Run every job; a failing input does not stop the others. Exit 1 if any failed."""
    failed: list[str] = []
    notes = _Notes(batch=True)
    with _progress(len(jobs)) as advance, closing(_pipelined(jobs, settings)) as finished:
        for job, messages, error in finished:
            for message in messages:
                notes(job.source, message)
            if error is not None:
                if debug_enabled():
                    raise error
                # a ConvtoolError says it all; else out of memory, or a bug: the others run
                text = str(error) if isinstance(error, ConvtoolError) else unexpected(error)
                echo_error(_about(job.source, text))
                failed.append(job.source)
            advance()
    _summary(failed, len(jobs))


_Finished = tuple[Job, list[str], Exception | None]
"""A job done: its notes, in order, and the error that ended it (None: written)."""

_Encoding = tuple[Job, list[str], "Future[bytes]", "OutputPlan"]
"""A job filtered, its result being encoded: what :func:`_finish` writes."""


def _pipelined(jobs: list[Job], settings: _Settings) -> Generator[_Finished, None, None]:
    """The jobs of a batch run in order, decoding and encoding beside the filtering.

    Threads read the next input and encode the previous result (Pillow and zlib release the
    GIL) while this thread filters the current one (the numba core takes one call at a time);
    this thread writes every file, in order, as soon as it is encoded, so that an
    interruption leaves what it leaves without threads: complete files and no temporary ones
    (the threads are daemons: one stuck reading a FIFO does not hold the exit up). Each job's
    notes and error are reported when it is finished, in the order of the jobs.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    reads = {0: _in_thread(_read, jobs[0], settings)}
    pending: _Encoding | None = None
    for index, job in enumerate(jobs):
        if index + 1 < len(jobs):
            reads[index + 1] = _in_thread(_read, jobs[index + 1], settings)
        reading = reads.pop(index)
        if pending is not None:
            wait([reading, pending[2]], return_when=FIRST_COMPLETED)
            if pending[2].done():
                yield _finish(*pending)
                pending = None
        messages: list[str] = []
        current: _Encoding | None = None
        error: Exception | None = None
        try:
            picture = reading.result()
            if picture is None:  # filtered in bands, here and now, after the one before
                if pending is not None:
                    yield _finish(*pending)
                    pending = None
                _run_streamed(job, settings, _collect(messages))
                yield job, messages, None
                continue
            messages.extend(picture.notes)
            picture, plan = _filter(job, settings, picture)
            current = (job, messages, _in_thread(_encode, job, picture, plan, settings), plan)
            del picture
        except Exception as exc:
            error = exc
        if pending is not None:
            yield _finish(*pending)
        pending = current
        if error is not None:
            yield job, messages, error
    if pending is not None:
        yield _finish(*pending)


def _in_thread(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """``function(*args)`` run in a new daemon thread; its future."""
    import threading
    from concurrent.futures import Future

    future: Future[Any] = Future()

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name="convtool", daemon=True).start()
    return future


def _finish(job: Job, messages: list[str], encoding: Future[bytes], plan: OutputPlan) -> _Finished:
    """Wait for a job's encoded result and write it (in this thread)."""
    try:
        _write(job, encoding.result(), plan, _collect(messages))
    except Exception as exc:
        return job, messages, exc
    return job, messages, None


def _collect(messages: list[str]) -> _Notes:
    collected = _Collected()
    collected.messages = messages
    return collected


def _summary(failed: list[str], total: int) -> None:
    if failed:
        shown = ", ".join(failed[:3]) + (", ..." if len(failed) > 3 else "")
        echo_error(f"{len(failed)} of {total} inputs failed ({shown})")
        raise typer.Exit(1)


class _Collected(_Notes):
    """Notes kept for the client to print, on a Dask worker."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def __call__(self, source: str, message: str) -> None:
        self.messages.append(message)


def run_job(job: Job, settings: _Settings) -> tuple[list[str], str | None]:
    """What one Dask task does: the local batch's per-file run; (notes, error message)."""
    notes = _Collected()
    try:
        _run(job, settings, notes)
    except ConvtoolError as exc:
        return notes.messages, str(exc)
    return notes.messages, None


def _renamed(message: str, names: tuple[tuple[str, str], ...]) -> str:
    for absolute, given in names:
        message = message.replace(absolute, given)
    return message


def _run_on_cluster(jobs: list[Job], settings: _Settings, address: str) -> None:
    """The batch on a Dask cluster: one task per file, reported as the local batch reports."""
    from convtool.dask import map_on_cluster

    remote = []
    for job in jobs:
        if job.source == "-" or job.target is None:
            raise UsageError(
                "--scheduler sends files to a cluster: standard input and output cannot go "
                "there; name input files and -o FILE, --out-dir or an -o template"
            )
        make_directory(job.target.parent)
        remote.append(Job(os.path.abspath(job.source), job.target.absolute()))
    failed: list[str] = []
    notes = _Notes(batch=len(jobs) > 1)
    with _progress(len(jobs)) as advance:
        for index, ok, outcome in map_on_cluster(address, run_job, remote, settings):
            source = jobs[index].source
            messages, error = outcome if ok else ([], f"the task failed on the cluster: {outcome}")
            # name the files as the user did, not by the absolute paths sent to the workers
            names = (
                (remote[index].source, source),
                (str(remote[index].target), str(jobs[index].target)),
            )
            for message in messages:
                notes(source, _renamed(message, names))
            if error is not None:
                error = _renamed(error, names)
                echo_error(_about(source, error) if len(jobs) > 1 else error)
                failed.append(source)
            advance()
    if len(jobs) == 1 and failed:
        raise typer.Exit(1)
    _summary(failed, len(jobs))


def _about(source: str, message: str) -> str:
    """``source: message``, unless the message already names the source."""
    return message if message.startswith(f"{source}:") else f"{source}: {message}"


class _progress:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[], None]:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=False)
            self.bar.__enter__()
            self.task = self.bar.add_task("filtering", total=self.total)
        return self.advance

    def advance(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
