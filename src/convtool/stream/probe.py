"""Whether an input is filtered in bands: what its header says, against the memory budget."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convtool.errors import ImageError, quoted
from convtool.io.formats import MATRIX_FORMATS, starts_as
from convtool.io.matrix import NpyReader, iter_lines, iter_matrix_rows, read_npy_header
from convtool.io.pillow import pillow
from convtool.stream.sizes import DEFAULT_MEMORY, available_memory, format_bytes

STREAM_FRACTION = 0.5
"""Without ``--memory``, an image is streamed when an in-memory run would need more than this
fraction of the available memory (``MemAvailable`` in /proc/meminfo)."""

IN_MEMORY_COPIES = 4
"""An in-memory run holds about this many float copies of the image at once (the decoded
planes, the filtered result, a temporary of the chain, the stored samples): float32 for
images, float64 for matrices."""

STREAM_FORMATS = ("TIFF", "NPY")


@dataclass(frozen=True)
class Probe:
    """What an input's header says, read without decoding any pixel."""

    format: str
    height: int
    width: int
    samples: int
    why_not: str | None = None
    """Why this input cannot be read in bands (None: it can)."""
    sample_bytes: int = 4
    """Bytes of a sample as filtered in memory: float32 for images, float64 for matrices."""
    read_bytes: int = 0
    """What reading it holds beside the samples (a text matrix's copies of its text)."""

    @property
    def in_memory_bytes(self) -> int:
        samples = self.height * self.width * self.samples
        return samples * self.sample_bytes * IN_MEMORY_COPIES + self.read_bytes


def probe(source: str) -> Probe | None:
    """The header of ``source``; None when it cannot be told cheaply (stdin, unreadable...).

    The in-memory path then reads the file and reports any problem in its own words.
    """
    if source == "-":
        return None
    path = Path(source)
    try:
        if path.suffix.lower() in MATRIX_FORMATS:
            if MATRIX_FORMATS[path.suffix.lower()] != "NPY":
                return _probe_text(path, MATRIX_FORMATS[path.suffix.lower()])
            reader = NpyReader(path)
            h, w = reader.shape[:2]
            return Probe("NPY", h, w, int(np.prod(reader.shape[2:])), sample_bytes=8)
        with open(path, "rb") as fp:
            magic = fp.read(4)
        if starts_as(magic, "TIFF"):
            return _probe_tiff(path)
        with pillow().open(path) as im:
            return Probe(
                str(im.format),
                int(im.height),
                int(im.width),
                len(im.getbands()),
                f"{im.format} cannot be read in bands",
            )
    except Exception:
        # not silent: a header that cannot be opened here (no such file, damaged, not an
        # image) is opened again the same way by the in-memory reader, which fails the same
        # way and reports it in its own words; once the size is known, nothing is caught
        return None


TEXT_COPIES = 4
"""A text matrix is held about this many times while it is read: its bytes, their text, the
text with commas made blanks, and that encoded for numpy's reader."""


def _probe_text(path: Path, fmt: str) -> Probe | None:
    """A text matrix's rows (its line ends and ``;``, counted in blocks) times the numbers of
    its first row: its size without parsing it."""
    size = path.stat().st_size
    with open(path, "rb") as fp:
        head = last = fp.read(2**20)
        ends = head.count(b"\n") + head.count(b";")
        while block := fp.read(2**22):
            ends += block.count(b"\n") + block.count(b";")
            last = block
    return _text_probe(head, ends + (not last.endswith(b"\n")), size, fmt)


def _text_probe(head: bytes, rows: int, size: int, fmt: str) -> Probe | None:
    """The size of a text matrix that starts with ``head``; None for bytes that are not text
    (the reader says what they are)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut at the end of the block
            return None
        text = head[: exc.start].decode("utf-8")
    first = next(iter_matrix_rows(iter_lines(text)), None)
    if first is None:
        return None
    return Probe(fmt, rows, len(first[1]), 1, "a text matrix is read whole", 8, TEXT_COPIES * size)


def _probe_tiff(path: Path) -> Probe:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        samples = int(page.samplesperpixel)
        h, w = int(page.imagelength), int(page.imagewidth)
        try:
            why = _why_not_in_bands(page)
        except Exception as exc:  # a damaged tag: the size is known, so the budget still holds
            why = f"its tags cannot be read ({type(exc).__name__}: {exc})"
        return Probe("TIFF", h, w, samples, why)


def _why_not_in_bands(page: Any) -> str | None:
    """Why a TIFF page cannot be read in bands; None when it can."""
    orientation = page.tags.get(274)
    if str(page.axes) not in ("YX", "YXS", "SYX"):
        return f"a TIFF with axes {page.axes} is not a plain 2-D image"
    if page.bitspersample not in (8, 16, 32, 64):
        return f"{page.bitspersample}-bit TIFF samples are read whole"
    if orientation is not None and int(orientation.value or 1) != 1:
        return f"a TIFF with orientation {orientation.value} must be turned upright whole"
    return None


def should_stream(source: str, *, memory: int | None, max_pixels: int) -> bool:
    """Whether ``source`` goes through the streamed path; ImageError when it cannot fit at all.

    The budget is ``memory`` (``--memory``), or :data:`STREAM_FRACTION` of the available
    memory. An input whose in-memory run (:data:`IN_MEMORY_COPIES` float copies) exceeds the
    budget is streamed when its format allows (TIFF, ``.npy``); so is a TIFF or ``.npy`` with
    more than ``max_pixels`` pixels, whose memory stays bounded by the budget. Other formats
    that would not fit are refused with a clear error.
    """
    info = probe(source)
    if info is None:
        return False
    budget = _budget(memory)
    too_big = budget is not None and info.in_memory_bytes > budget
    over_limit = info.height * info.width > max_pixels
    if info.why_not is None:
        return too_big or over_limit
    if too_big and not over_limit:  # over the limit: the in-memory path refuses it from its size
        if info.format in ("TXT", "CSV"):
            remedy = (
                "save it as .npy (numpy.save), which convtool filters band by band, or give "
                "more --memory"
            )
        elif info.format == "TIFF":  # a TIFF of a kind the band reader does not take
            remedy = (
                "rewrite it as an upright (orientation 1) 8-bit, 16-bit or float TIFF, which "
                "convtool filters band by band (e.g. vips autorot in.tif out.tif, or vips cast)"
            )
        else:
            remedy = (
                "convert it to TIFF, which convtool filters band by band (e.g. vips tiffsave "
                "in.png out.tif --tile --bigtiff)"
            )
        raise _too_big(quoted(source), info, memory, budget or 0, f"and {info.why_not}; {remedy}")
    return False


def check_stream_fits(raw: bytes, name: str, *, memory: int | None, max_pixels: int) -> None:
    """ImageError when the image in ``raw`` (read whole from a stream: standard input, a pipe)
    would need more than the memory budget in memory (see :func:`should_stream`), told from
    its header before any pixel is decoded; a stream cannot be filtered in bands."""
    info = _probe_bytes(raw)
    budget = _budget(memory)
    if info is None or budget is None or info.in_memory_bytes <= budget:
        return
    if info.height * info.width > max_pixels:
        return  # the reader refuses it from its size, naming --max-pixels
    raise _too_big(
        name,
        info,
        memory,
        budget,
        "and a stream is read whole; save it to a file and give that (a TIFF or .npy file is "
        "filtered band by band)",
    )


def _budget(memory: int | None) -> int | None:
    """``memory`` (``--memory``), or :data:`STREAM_FRACTION` of the available memory."""
    if memory is not None:
        return memory
    available = available_memory()
    return None if available is None else int(available * STREAM_FRACTION)


def _too_big(name: str, info: Probe, memory: int | None, budget: int, why: str) -> ImageError:
    what = "--memory" if memory is not None else "half the available memory"
    return ImageError(
        f"{name}: a {info.width}x{info.height} {info.format} image needs about "
        f"{format_bytes(info.in_memory_bytes)} in memory, more than {what} "
        f"({format_bytes(budget)}), {why}"
    )


def _probe_bytes(raw: bytes) -> Probe | None:
    """What the header at the start of ``raw`` says; None when it cannot be told (the reader
    then reports the bytes in its own words)."""
    fp = io.BytesIO(raw)
    try:
        if starts_as(raw, "NPY"):
            shape, _ = read_npy_header(fp)
            if len(shape) not in (2, 3):
                return None
            return Probe("NPY", shape[0], shape[1], int(np.prod(shape[2:])), sample_bytes=8)
        if starts_as(raw, "TIFF"):
            import tifffile

            with tifffile.TiffFile(fp) as tif:
                page = tif.pages.first
                h, w = int(page.imagelength), int(page.imagewidth)
                return Probe("TIFF", h, w, int(page.samplesperpixel))
        with pillow().open(fp) as im:
            return Probe(str(im.format), int(im.height), int(im.width), len(im.getbands()))
    except Exception:  # damaged or not an image: the reader says so in its own words
        pass
    rows = raw.count(b"\n") + raw.count(b";") + (not raw.endswith(b"\n"))
    return _text_probe(raw[: 2**20], rows, len(raw), "TXT")


def default_band_memory() -> int:
    """:data:`~convtool.stream.sizes.DEFAULT_MEMORY`, or less when less is available."""
    available = available_memory()
    if available is None:
        return DEFAULT_MEMORY
    return max(16 * 2**20, min(DEFAULT_MEMORY, int(available * STREAM_FRACTION)))
