"""Running jobs: read, filter, encode and write one input, or a batch of them in a pipeline.

The arithmetic lives in :mod:`convtool.filtering` (the kernel chain) and
:mod:`convtool.io` (reading, the pixel policy, writing); where each result goes is planned
by :mod:`convtool.batch.jobs`. Nothing here prints: notes and failures go to the callables the
caller hands in, so that a command, a Dask worker or a test decides what to show.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from convtool.batch.jobs import Job, make_directory
from convtool.errors import ConvtoolError, ImageError, UsageError, quoted

if TYPE_CHECKING:
    from concurrent.futures import Future

    from convtool.filtering.chain import Recipe
    from convtool.io.picture import Picture
    from convtool.io.plan import OutputPlan

# numpy, Pillow and the core are imported inside the functions that run a filter, so that
# the commands that do not filter do not load them.

NoteSink = Callable[[str, str], None]
"""Where a job's notes go: called with the input's name and the note."""

Failed = Callable[[str, "Exception | str"], None]
"""Told of an input that failed: its name, and the exception (or a worker's error message)."""


@dataclass(frozen=True)
class Settings:
    """Everything a job needs besides its input and target (sent to Dask workers as is)."""

    recipe: Recipe
    stdout_format: str | None
    depth: int | None
    map: str | None
    gray: bool
    quality: int | None
    compress_level: int | None
    max_pixels: int
    memory: int | None = None
    lossless: bool = False
    stdout_file: str | None = None
    """The regular file standard output writes into, if it is one (see :func:`file_behind`)."""
    pages: str | None = None
    """``--page``: the pages of a multi-page input to filter (None: all of them)."""


class Notes:
    """Show each distinct note once; in a batch, name the input it is about."""

    def __init__(self, show: Callable[[str], None], *, batch: bool = False) -> None:
        self.show = show
        self.batch = batch
        self.seen: set[str] = set()

    def __call__(self, source: str, message: str) -> None:
        if self.batch:
            message = about(source, message)
        if message not in self.seen:
            self.seen.add(message)
            self.show(message)


def about(source: str, message: str) -> str:
    """``source: message``, unless the message already names the source (quoted as every
    message quotes names, see :func:`convtool.errors.quoted`)."""
    name = quoted(source)
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


def collector(messages: list[str]) -> NoteSink:
    """A note sink that keeps the notes, in order, in ``messages``."""

    def keep(source: str, message: str) -> None:
        messages.append(message)

    return keep


def run_one(job: Job, settings: Settings, notes: NoteSink) -> None:
    """Read, plan, filter, encode and write one input."""
    picture = read(job, settings)
    if picture is None:
        run_apart(job, settings, notes)
        return
    for message in picture.notes:
        notes(job.source, message)
    picture, plan = filter_for(job, settings, picture)
    write(job, encode(job, picture, plan, settings), plan, notes)


def run_job(job: Job, settings: Settings) -> tuple[list[str], str | None]:
    """What one Dask task does: the local batch's per-file run; (notes, error message)."""
    messages: list[str] = []
    try:
        run_one(job, settings, collector(messages))
    except ConvtoolError as exc:
        return messages, str(exc)
    return messages, None


def read(job: Job, settings: Settings) -> Picture | None:
    """The input read (as samples where it has them); None for an input to filter apart (see
    :func:`run_apart`): page by page, or in bands."""
    from convtool.batch.pages import is_paged
    from convtool.io.read import read_picture, read_picture_bytes, read_stream
    from convtool.stream.probe import check_stream_fits, should_stream

    if is_paged(job, settings):
        return None
    stream = read_stream(job.source, max_pixels=settings.max_pixels)
    if stream is not None:  # read once, whole: the memory budget is checked on its header
        raw, name = stream
        check_stream_fits(raw, name, memory=settings.memory, max_pixels=settings.max_pixels)
        return read_picture_bytes(
            raw, name, gray=settings.gray, max_pixels=settings.max_pixels, samples=True
        )
    if is_file(job.source) and should_stream(
        job.source, memory=settings.memory, max_pixels=settings.max_pixels
    ):
        return None
    return read_picture(
        job.source, gray=settings.gray, max_pixels=settings.max_pixels, samples=True
    )


def is_file(source: str) -> bool:
    """Whether ``source`` names a regular file: one that can be probed, then read again (a
    pipe such as ``<(...)`` or /dev/stdin is read once, whole; a missing file is reported by
    the reader)."""
    return source != "-" and os.path.isfile(source)


def filter_for(job: Job, settings: Settings, picture: Picture) -> tuple[Picture, OutputPlan]:
    """The output planned, and the picture filtered for it (the input's planes dropped)."""
    from convtool.filtering.channels import laid_out
    from convtool.filtering.clipping import filter_for_output
    from convtool.io.formats import format_for_path
    from convtool.io.plan import plan_output

    if job.target is None:
        fmt = settings.stdout_format or ("TXT" if picture.is_matrix else picture.format)
        if settings.stdout_format is None:
            _check_writable(fmt, job.source)
    else:
        fmt = format_for_path(job.target)
        _check_format_option(job, settings, fmt)
    plan = plan_output(
        laid_out(picture, settings.recipe, fmt),
        fmt,
        depth=settings.depth,
        map=settings.map,
        lossless=settings.lossless,
    )
    if job.target is None and settings.stdout_format is None:
        redirected = _redirected_elsewhere(settings.stdout_file, plan.format)
        if redirected is not None:
            plan = replace(plan, notes=(*plan.notes, redirected))
    return filter_for_output(picture, settings.recipe, plan)


def _check_format_option(job: Job, settings: Settings, fmt: str) -> None:
    """``--format`` is for standard output: refused when it contradicts a file's extension."""
    if job.target is not None and settings.stdout_format not in (None, fmt):
        raise UsageError(
            f"--format {str(settings.stdout_format).lower()} contradicts the output file "
            f"{str(job.target)!r}; the extension picks a file's format (--format is for -o -)"
        )


def file_behind(stream: IO[Any]) -> str | None:
    """The regular file ``stream`` writes into (``> out.jpg``), or None: a pipe, a terminal,
    no file descriptor, or a system without ``/proc/self/fd``."""
    try:
        target = os.readlink(f"/proc/self/fd/{stream.fileno()}")
    except (OSError, ValueError, AttributeError):
        return None
    return target if os.path.isfile(target) else None


def _redirected_elsewhere(target: str | None, fmt: str) -> str | None:
    """A note when standard output is a file whose extension names another format than the
    one written (``convtool apply in.png -k K > out.jpg`` writes PNG bytes into out.jpg)."""
    from convtool.io.formats import format_for_path

    if target is None:
        return None
    try:
        named = format_for_path(target)
    except UsageError:  # an extension convtool does not know: no note
        return None
    if named == fmt:
        return None
    return (
        f"standard output is {quoted(target)}, but {fmt} is written there (the input's "
        f"format): name the output with -o {quoted(os.path.basename(target))}, or choose one "
        "with --format"
    )


def _check_writable(fmt: str, source: str) -> None:
    """Standard output takes the input's format: say so when convtool cannot write that one."""
    from convtool.io.formats import format_by_name

    try:
        format_by_name(fmt)
    except UsageError:
        raise UsageError(
            f"{'standard input' if source == '-' else quoted(source)} is {fmt}, which convtool "
            "cannot write, and standard output takes the input's format: choose one with "
            "--format (png, tiff, jpeg, webp, bmp, gif, ppm, npy, txt or csv)"
        ) from None


def encode(job: Job, picture: Picture, plan: OutputPlan, settings: Settings) -> bytes:
    """The filtered picture as the bytes of its output file."""
    from convtool.io.encode import encode as encode_picture

    try:
        return encode_picture(
            picture,
            plan,
            quality=settings.quality,
            compress_level=settings.compress_level,
            threads=settings.recipe.threads,
        )
    except ImageError as exc:  # the encoder's refusal, about the output: name it
        raise ImageError(f"{quoted(job.target or 'standard output')}: {exc}") from None


def write(job: Job, payload: bytes, plan: OutputPlan, notes: NoteSink) -> None:
    """The encoded result written where the job says, then the plan's notes."""
    from convtool.io.files import write_output

    if job.target is not None:
        make_directory(job.target.parent)
    write_output(payload, job.target)
    for message in plan.notes:
        notes(job.source, message)


def run_apart(job: Job, settings: Settings, notes: NoteSink) -> None:
    """An input :func:`read` leaves aside: one of several pages, or too large for memory."""
    from convtool.batch.pages import is_paged, run_pages

    if is_paged(job, settings):
        run_pages(job, settings, notes)
    else:
        run_streamed(job, settings, notes)


def run_streamed(
    job: Job, settings: Settings, notes: NoteSink, pages: tuple[int, ...] = (0,)
) -> None:
    """One input (or ``pages`` of a multi-page TIFF) too large for memory, filtered band by
    band (see convtool.stream.apply)."""
    from convtool.io.formats import format_for_path
    from convtool.stream.apply import run_streamed as run_in_bands

    fmt = format_for_path(job.target) if job.target is not None else ""
    _check_format_option(job, settings, fmt)
    if job.target is not None:
        make_directory(job.target.parent)
    run_in_bands(
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
        pages=pages,
    )


def run_batch(
    jobs: list[Job],
    settings: Settings,
    *,
    notes: NoteSink,
    failed: Failed,
    advance: Callable[[], None] = lambda: None,
) -> list[str]:
    """Run every job; a failing input does not stop the others. The inputs that failed.

    Each job's notes go to ``notes`` and its failure to ``failed`` (which may raise to stop
    the batch), in the order of the jobs; ``advance`` is called once per job done.
    """
    failures: list[str] = []
    with closing(pipelined(jobs, settings)) as finished:
        for job, messages, error in finished:
            for message in messages:
                notes(job.source, message)
            if error is not None:
                failed(job.source, error)
                failures.append(job.source)
            advance()
    return failures


Finished = tuple[Job, list[str], "Exception | None"]
"""A job done: its notes, in order, and the error that ended it (None: written)."""

_Encoding = tuple[Job, list[str], "Future[bytes]", "OutputPlan"]
"""A job filtered, its result being encoded: what :func:`_finish` writes."""


def pipelined(jobs: list[Job], settings: Settings) -> Generator[Finished, None, None]:
    """The jobs of a batch run in order, decoding and encoding beside the filtering.

    Threads read the next input and encode the previous result (Pillow and zlib release the
    GIL) while this thread filters the current one (the numba core takes one call at a time);
    this thread writes every file, in order, as soon as it is encoded, so that an
    interruption leaves what it leaves without threads: complete files and no temporary ones
    (the threads are daemons: one stuck reading a FIFO does not hold the exit up). Each job's
    notes and error are reported when it is finished, in the order of the jobs.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    reads = {0: in_thread(read, jobs[0], settings)}
    pending: _Encoding | None = None
    for index, job in enumerate(jobs):
        if index + 1 < len(jobs):
            reads[index + 1] = in_thread(read, jobs[index + 1], settings)
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
            if picture is None:  # filtered apart, here and now, after the one before
                if pending is not None:
                    yield _finish(*pending)
                    pending = None
                run_apart(job, settings, collector(messages))
                yield job, messages, None
                continue
            messages.extend(picture.notes)
            picture, plan = filter_for(job, settings, picture)
            current = (job, messages, in_thread(encode, job, picture, plan, settings), plan)
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


def in_thread(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """``function(*args)`` run in a new daemon thread, in a copy of this thread's context
    (what :mod:`convtool.compiled` was told of the run holds there too); its future."""
    import contextvars
    import threading
    from concurrent.futures import Future

    future: Future[Any] = Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result = context.run(function, *args)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name="convtool", daemon=True).start()
    return future


def _finish(job: Job, messages: list[str], encoding: Future[bytes], plan: OutputPlan) -> Finished:
    """Wait for a job's encoded result and write it (in this thread)."""
    try:
        write(job, encoding.result(), plan, collector(messages))
    except Exception as exc:
        return job, messages, exc
    return job, messages, None
