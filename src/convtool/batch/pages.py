"""One input of several pages (multi-page TIFF, animated GIF, WebP, PNG): each page read,
filtered and written into one container, a page at a time (see :mod:`convtool.io.pages`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from convtool.batch import pipeline
from convtool.batch.jobs import Job, make_directory
from convtool.errors import UsageError

if TYPE_CHECKING:
    from convtool.batch.pipeline import NoteSink, Settings
    from convtool.io.picture import Picture


def is_paged(job: Job, settings: Settings) -> bool:
    """Whether ``job`` goes page by page: a file of several pages, or ``--page`` given."""
    from convtool.io.pages import page_count

    if not pipeline.is_file(job.source):
        if settings.pages is not None:
            name = "standard input" if job.source == "-" else job.source
            raise UsageError(
                f"--page {settings.pages}: {name} is read once, as one picture (its first "
                "page); give the file by name to pick pages"
            )
        return False
    return settings.pages is not None or page_count(job.source) > 1


def run_pages(job: Job, settings: Settings, notes: NoteSink) -> None:
    """Filter the pages ``settings.pages`` picks (all by default) of ``job.source``: one page
    as a plain picture, several into one container of the output's format."""
    from convtool.io.pages import PagesWriter, page_info, select_pages
    from convtool.io.read import read_picture
    from convtool.stream.probe import should_stream

    info = page_info(job.source)
    count = 1 if info is None else info.count
    indices = select_pages(settings.pages, count, job.source)
    if should_stream(job.source, memory=settings.memory, max_pixels=settings.max_pixels):
        # the first page is too large for memory (a stack's pages share a size): each page
        # is filtered in bands in turn
        pipeline.run_streamed(job, settings, notes, pages=indices)
        return

    def read(index: int) -> Picture:
        return read_picture(
            job.source,
            gray=settings.gray,
            max_pixels=settings.max_pixels,
            samples=True,
            page=index,
        )

    if len(indices) == 1:
        picture, plan = pipeline.filter_for(job, settings, read(indices[0]))
        pipeline.write(job, pipeline.encode(job, picture, plan, settings), plan, notes)
        return
    if job.target is not None:
        make_directory(job.target.parent)
    said: dict[str, tuple[int, str, bool]] = {}  # note's shape -> (page, text, recurs)
    with PagesWriter(
        job.target,
        info,
        indices=indices,
        quality=settings.quality,
        compress_level=settings.compress_level,
    ) as out:
        for index in indices:
            picture = read(index)
            filtered, plan = pipeline.filter_for(job, settings, picture)
            for message in (*picture.notes, *plan.notes):
                # a note told of each page alike (the clipping count) is told once, the first
                shape = re.sub(r"[0-9.,]+", "#", message)
                first = said.get(shape)
                said[shape] = (
                    (index, message, False)
                    if first is None
                    else (first[0], first[1], first[2] or message != first[1])
                )
            out.add(filtered, plan)
    for index, message, recurs in said.values():
        tail = f" (on page {index}; other pages likewise)" if recurs else ""
        notes(job.source, message + tail)
