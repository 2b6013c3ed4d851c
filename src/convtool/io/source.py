"""Reading bytes whose size is not known before reading (standard input, FIFOs, devices) within
a bound known before reading, so that an endless source (``/dev/zero``, ``yes 1 |``) ends in one
clear error instead of filling the memory."""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

from convtool.errors import ImageError
from convtool.io.formats import signature, starts_as
from convtool.io.matrix import read_npy_header
from convtool.io.picture import check_pixels

HEAD_BYTES = 1 << 20
"""The first bytes read from a stream, from which its kind and size are told."""

CHUNK_BYTES = 1 << 20

HEADER_ALLOWANCE = 64 << 20
"""Bytes allowed beyond the pixels an image's header promises (metadata, ICC profiles,
compression that grows noise)."""

TEXT_BYTES_PER_NUMBER = 32
"""The most bytes a text matrix may spend on one number, separators and comments included."""


def read_at_most(fp: BinaryIO, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of ``fp``, and whether that was all of them (EOF reached)."""
    # one system call a chunk (read1): a terminal's Ctrl-D ends one read only, and a read of
    # n bytes would wait past it for more
    read = getattr(fp, "read1", fp.read)
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = read(min(CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)[:limit], False


def read_image_stream(fp: BinaryIO, name: str, max_pixels: int) -> bytes:
    """All bytes of a stream that should hold an image, a ``.npy`` or a text matrix.

    The first :data:`HEAD_BYTES` tell the kind: an image's or a ``.npy``'s header gives its
    size, checked against ``max_pixels`` before the rest is read, and bounds the bytes; a text
    matrix may hold ``max_pixels`` numbers; anything else is refused at once.
    """
    head, complete = read_at_most(fp, HEAD_BYTES)
    if complete:
        return head
    bound = _stream_bound(head, name, max_pixels)
    if bound is None:  # text
        return _read_text_stream(fp, head, name, max_pixels)
    rest, complete = read_at_most(fp, max(0, bound - len(head)))
    if not complete:
        raise ImageError(
            f"{name}: goes on past {_mib(bound)} MiB, more than its header promises or "
            "--max-pixels allows; is it an endless stream (a device, 'yes |')? give a file"
        )
    return head + rest


def _stream_bound(head: bytes, name: str, max_pixels: int) -> int | None:
    """The most bytes a stream starting with ``head`` may hold; None for text."""
    if starts_as(head, "NPY"):
        fp = io.BytesIO(head)
        try:
            shape, dtype = read_npy_header(fp)
        except ValueError as exc:
            raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
        height, width = (*shape, 1, 1)[:2]
        check_pixels(int(width), int(height), name, max_pixels)
        count = 1
        for side in shape:
            count *= int(side)
        return fp.tell() + count * dtype.itemsize
    size = _pillow_size(head)
    if size is not None:
        width, height, bands = size
        check_pixels(width, height, name, max_pixels)
        return 2 * width * height * bands * 8 + HEADER_ALLOWANCE
    if signature(head) is not None or starts_as(head, "TIFF"):
        return max_pixels * 4 * 8 + HEADER_ALLOWANCE
    if b"\0" not in head:
        try:
            codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            return None
    raise ImageError(
        f"{name}: neither an image nor a text matrix (it starts with bytes "
        f"{head[:8].hex(' ')}); give a PNG, JPEG, TIFF... image, a .npy or a text matrix"
    )


def _pillow_size(head: bytes) -> tuple[int, int, int] | None:
    """Width, height and bands from an image header Pillow reads in ``head``, else None."""
    from convtool.io.pillow import pillow

    try:
        with pillow().open(io.BytesIO(head)) as im:
            return int(im.width), int(im.height), len(im.getbands())
    except Exception:  # not an image Pillow identifies from its first bytes: told otherwise
        return None


def _read_text_stream(fp: BinaryIO, head: bytes, name: str, max_pixels: int) -> bytes:
    """The rest of a text matrix, refused once it holds more words than ``max_pixels`` allows
    (comments count: they are bounded with the numbers) or more bytes per number than
    :data:`TEXT_BYTES_PER_NUMBER`."""
    limit = max_pixels * TEXT_BYTES_PER_NUMBER
    chunks = [head]
    total = len(head)
    words = _words(head)
    read = getattr(fp, "read1", fp.read)
    while True:
        chunk = read(CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        words += _words(chunk)
        if words > max_pixels or total > limit:
            raise ImageError(
                f"{name}: a text matrix of more than {max_pixels} numbers (--max-pixels) or "
                f"{_mib(limit)} MiB; is it an endless stream ('yes |')? raise --max-pixels "
                "for a larger matrix"
            )


def _words(chunk: bytes) -> int:
    """About how many numbers ``chunk`` holds: words between spaces and commas."""
    return len(chunk.split()) + chunk.count(b",")


def _mib(n: int) -> int:
    return max(1, n >> 20)
