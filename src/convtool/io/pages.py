"""Pictures of several pages: multi-page TIFF and animations (GIF, WebP, APNG).

How many pages a file has and its animation's timing (:func:`page_info`), the ``--page``
selection (:func:`parse_pages`, :func:`select_pages`), and the container that filtered pages
are written into (:class:`PagesWriter`). Pages are numbered from 0, as ImageMagick's
``in.tif[0]`` and tifffile's ``key=0`` number them; ``N-M`` includes both ends, as
ImageMagick's ``in.gif[0-3]`` does.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from convtool.errors import ImageError, UsageError
from convtool.io.encode import encode_frames, pillow_frame
from convtool.io.files import atomic_file, write_output
from convtool.io.formats import caps, starts_as
from convtool.io.picture import Picture, fitting_metadata
from convtool.io.pixels import stored_samples
from convtool.io.plan import OutputPlan
from convtool.io.tiff import BIGTIFF_THRESHOLD, tiff_options


@dataclass(frozen=True)
class Pages:
    """What a file's header says of its pages: the format, how many, and an animation's
    timing: ``durations`` (ms, one per frame), ``loop`` (0: forever; None: the file has no
    loop count, and plays once), ``disposals`` (one per frame, in GIF's numbers: 0 none said,
    1 keep, 2 clear to the background, 3 restore the previous frame; APNG's dispose_op 0, 1, 2
    are 1, 2, 3; empty for WebP, whose frames Pillow composes without telling)."""

    format: str
    count: int
    durations: tuple[float, ...] = ()
    loop: int | None = None
    disposals: tuple[int, ...] = ()


def page_count(source: str) -> int:
    """How many pages the file ``source`` has for convtool to filter: those of a multi-page
    TIFF or an animation; 1 for anything else (a camera's MPO JPEG keeps its first picture,
    with a note) or a file that does not open (the reader then says what is wrong)."""
    info = page_info(source, timing=False)
    return 1 if info is None or caps(info.format).pages is None else info.count


def page_info(source: str, *, timing: bool = True) -> Pages | None:
    """The pages of the image file ``source``; None for standard input, a matrix file, or a
    file that does not open (the reader then says what is wrong in its own words)."""
    if source == "-":
        return None
    try:
        with open(source, "rb") as fp:
            head = fp.read(12)
            fp.seek(0)
            if starts_as(head, "TIFF"):
                return _tiff_pages(fp)
            return _pillow_pages(fp, timing)
    except Exception:
        return None


def _tiff_pages(fp: Any) -> Pages:
    import tifffile

    with tifffile.TiffFile(fp) as tif:
        return Pages("TIFF", len(tif.pages))


def _pillow_pages(fp: Any, timing: bool) -> Pages | None:
    from convtool.io.pillow import pillow

    with pillow().open(fp) as im:
        count = int(getattr(im, "n_frames", 1))
        fmt = str(im.format)
        if count < 2 or not timing:
            return Pages(fmt, count)
        loop = im.info.get("loop")
        durations, disposals = [], []
        for index in range(count):
            im.seek(index)
            if "duration" not in im.info:
                im.load()  # WebP tells a frame's duration once it is decoded
            durations.append(float(im.info.get("duration", 0) or 0))
            if hasattr(im, "disposal_method"):
                disposals.append(int(im.disposal_method))
            elif getattr(im, "dispose_op", None) is not None:
                disposals.append(int(im.dispose_op) + 1)
        return Pages(
            fmt,
            count,
            tuple(durations),
            None if loop is None else int(loop),
            tuple(disposals) if len(disposals) == count else (),
        )


def _page_number(text: str) -> int:
    """ASCII digits only: ``int`` would also take other scripts' digits and ``1_0``."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ValueError(text)
    return int(text)


def parse_pages(spec: str) -> tuple[tuple[int, int], ...]:
    """``--page``: ``N``, ``N-M`` (both included) or a comma-separated list of them, 0-based;
    the (first, last) ranges. UsageError for anything else."""
    ranges = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            lo = _page_number(first)
            hi = _page_number(last) if dash else lo
        except ValueError:
            raise UsageError(
                f"--page {spec!r}: give a page number, a range N-M or a list of them "
                "(0-based, as ImageMagick's in.tif[0]: --page 0 is the first page, --page 2-4 "
                "the third to fifth)"
            ) from None
        if lo < 0 or hi < lo:
            raise UsageError(
                f"--page {spec!r}: pages are numbered from 0 and a range N-M needs N <= M"
            )
        ranges.append((lo, hi))
    return tuple(ranges)


def select_pages(spec: str | None, count: int, name: str) -> tuple[int, ...]:
    """The pages ``spec`` picks (all for None), in the order given, of a file of ``count``."""
    if spec is None:
        return tuple(range(count))
    ranges = parse_pages(spec)
    top = max(hi for _, hi in ranges)
    if top >= count:
        has = f"{count} page{'s' * (count != 1)}"
        numbered = "page 0" if count == 1 else f"pages 0 to {count - 1}"
        raise UsageError(
            f"--page {spec}: {name} has {has} ({numbered}, counted from 0 as ImageMagick's "
            f"in.tif[0]); pick one of them"
        )
    return tuple(i for lo, hi in ranges for i in range(lo, hi + 1))


def page_name(name: str, index: int) -> str:
    """``name[index]``: a page named as ImageMagick names it, for messages."""
    return f"{name}[{index}]"


class PagesWriter:
    """Filtered pages into one container, opened on the first page (its plan names the
    format): TIFF pages are written as they come, so that one page is in memory at a time;
    animation frames are kept and encoded at the end with the input's timing.

    ``target`` None writes to standard output. A failure leaves no partial file.
    """

    def __init__(
        self,
        target: Path | None,
        pages: Pages | None,
        *,
        indices: tuple[int, ...],
        quality: int | None,
        compress_level: int | None,
    ) -> None:
        self.target = target
        self.pages = pages
        self.indices = indices
        self.quality = quality
        self.compress_level = compress_level
        self.plan: OutputPlan | None = None
        self._stack = contextlib.ExitStack()
        self._tiff: Any = None
        self._buffer: io.BytesIO | None = None
        self._frames: list[Any] = []

    def __enter__(self) -> PagesWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._finish()
        self._stack.__exit__(kind, exc, tb)

    def add(self, picture: Picture, plan: OutputPlan) -> None:
        """Write (TIFF) or keep (animation) one filtered page, planned as ``plan``."""
        first = self.plan is None
        if first:
            self._check(plan)
        if plan.format == "TIFF":
            stored = stored_samples(picture, plan)
            if stored.ndim == 3 and stored.shape[2] == 1:
                stored = stored[..., 0]
            if first:
                self._open_tiff(stored.nbytes * len(self.indices) > BIGTIFF_THRESHOLD)
            metadata = fitting_metadata(picture.metadata, plan.colors)
            self._tiff.write(stored, **tiff_options(plan, metadata, self.compress_level))
        else:
            self._frames.append(pillow_frame(picture, plan))

    def _check(self, plan: OutputPlan) -> None:
        if caps(plan.format).pages is None:
            raise ImageError(
                f"{self.target or 'standard output'}: {len(self.indices)} pages are filtered and "
                f"{plan.format} holds one picture; write .tif, .gif, .webp or .png (animated), "
                "or pick one page with --page N"
            )
        self.plan = plan

    def _open_tiff(self, bigtiff: bool) -> None:
        """The TIFF file, BigTIFF when the pages would pass the classic format's 4 GiB."""
        import tifffile

        fp: Any
        if self.target is None:
            fp = self._buffer = io.BytesIO()
        else:
            fp = self._stack.enter_context(atomic_file(self.target))
        self._tiff = self._stack.enter_context(tifffile.TiffWriter(fp, bigtiff=bigtiff))

    def _finish(self) -> None:
        if self.plan is None:
            return
        if self._tiff is not None:
            self._tiff.close()
            if self._buffer is not None:
                write_output(self._buffer.getvalue(), None)
            return
        pages = self.pages
        timing: dict[str, Any] = {}
        if pages is not None and pages.durations:
            timing["durations"] = [pages.durations[i] for i in self.indices]
            timing["loop"] = pages.loop
            if pages.disposals:
                timing["disposals"] = [pages.disposals[i] for i in self.indices]
        try:
            payload = encode_frames(
                self._frames,
                self.plan,
                quality=self.quality,
                compress_level=self.compress_level,
                **timing,
            )
        except ImageError as exc:  # the encoder's refusal, about the output: name it
            raise ImageError(f"{self.target or 'standard output'}: {exc}") from None
        self._frames = []
        write_output(payload, self.target)
