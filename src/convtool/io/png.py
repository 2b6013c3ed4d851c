"""All PNG writing: the strategy chooser, 8-bit PNG on every core, 16-bit colour PNG, and
the metadata chunks.

Large 8-bit pictures are written here rather than by Pillow, which filters and deflates on one
core: a pool of threads filters the rows (numba, without the GIL) and deflates them in pieces
(zlib releases the GIL), the pieces joined into one zlib stream as pigz does (each piece but
the last ends on a byte boundary with a sync flush). The file is an ordinary PNG; only its
bytes differ from Pillow's: the filter chosen for a row, and pieces that do not share their
32 KiB window.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convtool.io.picture import Metadata

Z_DEFAULT_STRATEGY, Z_RLE = zlib.Z_DEFAULT_STRATEGY, zlib.Z_RLE
"""zlib strategies: Z_RLE matches runs only."""

PILLOW_DEFAULT_STRATEGY = -1
"""``compress_type`` leaving the strategy to Pillow's PNG writer (not zlib's default: the
bytes differ), the alternative to Z_RLE for pictures Pillow writes."""

STRATEGY_TRIAL_PIXELS = 1 << 18
"""Pictures of at least this many pixels written by Pillow get their strategy tried on a
sample of rows (below it, the trial costs more than it can save)."""


def choose_strategy(
    height: int, level: int, size: Callable[[int, int, int], int], default: int
) -> int:
    """``Z_RLE`` where it compresses two sample bands of the rows (1/64 of them each, at 1/4
    and 3/4 of the height) no larger than the ``default`` strategy, else ``default``.

    ``size(top, rows, strategy)`` is the compressed size of ``rows`` rows from ``top`` (which
    may be negative for very short pictures). On photographs and what filters make of them,
    the PNG row filters leave little for long matches, and Z_RLE is much faster and no larger;
    on text, tiles and screenshots it is many times larger: hence the trial.
    """
    if level == 0:
        return default
    rows = max(16, height // 64)
    tops = (height // 4, height * 3 // 4 - rows)
    usual, rle = (sum(size(top, rows, strategy) for top in tops) for strategy in (default, Z_RLE))
    return Z_RLE if rle <= usual else default


def png_strategy(im: Any, compress_level: int) -> int:
    """The strategy for Pillow's writer of ``im`` (a Pillow image): the default for small
    pictures, else :func:`choose_strategy` on bands written by Pillow."""
    if im.width * im.height < STRATEGY_TRIAL_PIXELS:
        return PILLOW_DEFAULT_STRATEGY

    def size(top: int, rows: int, strategy: int) -> int:
        buffer = io.BytesIO()
        band = im.crop((0, top, im.width, top + rows))
        band.save(buffer, format="PNG", compress_level=compress_level, compress_type=strategy)
        return buffer.tell()

    return choose_strategy(im.height, compress_level, size, PILLOW_DEFAULT_STRATEGY)


def filtered_strategy(filtered: np.ndarray, level: int) -> int:
    """The strategy for :func:`encode_png8`: :func:`choose_strategy` on ``filtered``, the
    rows as the PNG row filter left them (raw deflate of the bands)."""

    def size(top: int, rows: int, strategy: int) -> int:
        top = max(0, top)
        return len(_deflate(filtered[top : top + rows].tobytes(), level, strategy))

    return choose_strategy(filtered.shape[0], level, size, Z_DEFAULT_STRATEGY)


PARALLEL_SAMPLES = 1 << 23
"""Pictures of at least this many samples are written here, smaller ones by Pillow: below it,
loading numba for the row filter (when the filtering did not load it already) costs about what
writing on several cores saves."""

PIECE_BYTES = 1 << 21
"""Filtered bytes per piece (whole rows, at least one): a fixed size, so that the file depends
on the picture and the level only, never on the number of cores."""

FILTER_WORK = 5
"""The row filter's cost a sample, in the multiply-adds of ``compiled.TWIN_BUDGET``: its numpy
twin tries the five filter types on every byte."""

_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # grey, grey + alpha, RGB, RGBA
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png8(
    stored: np.ndarray, level: int, chunks: bytes = b"", *, threads: int | None = None
) -> bytes:
    """The PNG of ``stored`` (H, W) or (H, W, C) uint8, C = 1..4 (grey, grey + alpha, RGB,
    RGBA), zlib ``level`` 0..9, with the ancillary ``chunks`` (whole, CRCs included) after
    IHDR, on ``threads`` threads (default: every core). The strategy is ``Z_RLE`` where a
    sample of the filtered rows shows it no larger."""
    h, w = stored.shape[:2]
    planes = 1 if stored.ndim == 2 else stored.shape[2]
    rows = np.ascontiguousarray(stored).reshape(h, w * planes)
    body = _zlib_stream(rows, planes, level, threads or os.cpu_count() or 1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPE[planes], 0, 0, 0)
    parts = [_SIGNATURE, *_chunk(b"IHDR", ihdr), chunks]
    for data in body:  # one IDAT chunk per piece
        parts += _chunk(b"IDAT", data)
    parts += _chunk(b"IEND", b"")
    return b"".join(parts)


def _zlib_stream(rows: np.ndarray, planes: int, level: int, threads: int) -> list[bytes]:
    """The filtered ``rows`` as one zlib stream in pieces: the header and the first piece, the
    pieces deflated on threads, the last one with the Adler-32 of all."""
    from convtool import compiled
    from convtool.twins import png as png_twin

    if not rows.flags.writeable:
        rows = rows.copy()  # one compiled signature: numba types read-only arrays apart
    h = rows.shape[0]
    filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
    step = max(1, PIECE_BYTES // filtered.shape[1])
    pieces = [(top, min(top + step, h)) for top in range(0, h, step)]
    png_filter = compiled.choose(
        "png_filter",
        (rows, 0, 1, planes, filtered),
        png_twin.png_filter,
        work=float(rows.size) * FILTER_WORK,
    )

    def filter_rows(piece: tuple[int, int]) -> None:
        png_filter(rows, piece[0], piece[1], planes, filtered)

    def deflate(piece: tuple[int, int]) -> bytes:
        top, bottom = piece
        z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, strategy)
        return z.compress(filtered[top:bottom].data) + z.flush(
            zlib.Z_FINISH if bottom == h else zlib.Z_SYNC_FLUSH
        )

    with ThreadPoolExecutor(min(len(pieces), threads)) as pool:
        list(pool.map(filter_rows, pieces))
        strategy = filtered_strategy(filtered, level)
        body = list(pool.map(deflate, pieces))
    body[0] = _deflate(b"", level, strategy, zlib.MAX_WBITS)[:2] + body[0]
    body[-1] += struct.pack(">I", zlib.adler32(filtered.data))
    return body


def _deflate(data: bytes, level: int, strategy: int, wbits: int = -zlib.MAX_WBITS) -> bytes:
    """``data`` deflated whole: a raw stream, or (``wbits`` > 0) a zlib one."""
    piece = zlib.compressobj(level, zlib.DEFLATED, wbits, 8, strategy)
    return piece.compress(data) + piece.flush()


def _chunk(kind: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    """A PNG chunk as (length and type, data, CRC), for joining without copying ``data``."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind, data, struct.pack(">I", crc)


def encode_png16(stored: np.ndarray, metadata: Metadata, compress_level: int) -> bytes:
    """16-bit colour or grey + alpha PNG through imagecodecs, with Pillow's metadata chunks."""
    import imagecodecs

    encoded = bytes(imagecodecs.png_encode(np.ascontiguousarray(stored), level=compress_level))
    chunks = png_metadata_chunks(metadata)
    if not chunks:
        return encoded
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return encoded[:end_of_ihdr] + chunks + encoded[end_of_ihdr:]


def png_xmp(xmp: bytes) -> Any:
    """A PngInfo holding the XMP packet as PNG keeps it: an iTXt chunk 'XML:com.adobe.xmp'."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    return info


def png_metadata_chunks(metadata: Metadata) -> bytes:
    """The iCCP, pHYs and eXIf chunks Pillow writes for ``metadata``, copied from a 1×1 PNG
    (imagecodecs writes pixels only; the chunks are taken whole, CRCs included)."""
    from PIL import Image

    options: dict[str, Any] = {}
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.dpi:
        options["dpi"] = metadata.dpi
    if metadata.exif:
        options["exif"] = metadata.exif
    if metadata.xmp:
        options["pnginfo"] = png_xmp(metadata.xmp)
    if not options:
        return b""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG", **options)
    png = buffer.getvalue()
    position, kept = 8, []
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind = png[position + 4 : position + 8]
        end = position + 12 + length
        if kind in (b"iCCP", b"pHYs", b"eXIf", b"iTXt"):
            kept.append(png[position:end])
        position = end
    return b"".join(kept)
