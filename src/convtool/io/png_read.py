"""Decoding the pixels of plain 8-bit PNGs with libspng (through imagecodecs), which is faster
than Pillow's decoder and gives the same samples.

Pillow still opens every PNG (header, mode, metadata); libspng only replaces its decoding of
the pixels, for the files where the two cannot differ: 8-bit grey, RGB or RGBA (interlaced or
not) without a transparency chunk, and with nothing convtool reads after the image data
(Pillow reads chunks that follow it, an EXIF block or text, only while it decodes). Anything
else, a failure of libspng included, is decoded by Pillow as before.
libspng prints nothing (libpng would print its warnings on stderr).
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import numpy as np

MODES = ("L", "RGB", "RGBA")
"""Pillow modes of the PNGs libspng decodes here, each stored as itself at 8 bits a sample."""

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE_DATA, _END = b"IDAT", b"IEND"


def spng_pixels(im: Any, fp: BinaryIO, rawmode: str) -> np.ndarray | None:
    """The samples of the PNG Pillow opened as ``im`` from ``fp`` (``rawmode`` its storage,
    see ``pillow._pillow_rawmode``) as ``np.asarray(im)`` would give them, decoded by
    libspng; None where Pillow is to decode it (see the module's docstring)."""
    if im.format != "PNG" or im.mode not in MODES or rawmode != im.mode:
        return None
    if "transparency" in im.info or getattr(im, "n_frames", 1) != 1:
        return None
    decode = spng_decoder()
    if decode is None:
        return None
    fp.seek(0)
    raw = fp.read()
    if not nothing_after_image_data(raw):
        return None
    try:
        pixels = np.asarray(decode(raw))
    except Exception:  # damaged bytes: Pillow decodes them, or says what is wrong
        return None
    expected = (im.height, im.width) + ((len(im.mode),) if im.mode != "L" else ())
    if pixels.dtype != np.uint8 or pixels.shape != expected:
        return None
    return pixels


def nothing_after_image_data(raw: bytes) -> bool:
    """Whether the PNG ``raw`` is a chain of whole chunks with image data (IDAT) in one run,
    followed by the end chunk (IEND) and nothing convtool reads: a time stamp (tIME), or the
    dates ImageMagick writes there (text chunks whose keyword starts ``date:``)."""
    if not raw.startswith(_SIGNATURE):
        return False
    position, seen_data = len(_SIGNATURE), False
    while position + 8 <= len(raw):
        length, kind = struct.unpack_from(">I4s", raw, position)
        start, position = position + 8, position + 12 + length
        if position > len(raw):
            return False
        if kind == _IMAGE_DATA:
            seen_data = True
        elif kind == _END:
            return seen_data
        elif seen_data and not _unread(kind, raw[start : start + _KEYWORD_BYTES]):
            return False
    return False


_KEYWORD_BYTES = 80
"""A text chunk's keyword and its NUL fit in this many bytes (PNG allows 79 for the keyword)."""


def _unread(kind: bytes, head: bytes) -> bool:
    """Whether a chunk of ``kind`` starting with ``head`` holds nothing convtool reads."""
    if kind == b"tIME":
        return True
    return kind in (b"tEXt", b"zTXt") and head.startswith(b"date:") and b"\0" in head


def spng_decoder() -> Any:
    """imagecodecs' ``spng_decode``, or None without imagecodecs or its libspng."""
    try:
        import imagecodecs
    except ImportError:
        return None
    try:
        if not imagecodecs.SPNG.available:
            return None
        return imagecodecs.spng_decode
    except AttributeError:  # an imagecodecs built without libspng
        return None
