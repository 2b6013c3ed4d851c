"""Damaged JPEGs that decode anyway: libjpeg fills what a cut file lacks with flat grey and only
warns ("premature end of data segment"), a warning Pillow does not pass on. These checks refuse
such files instead of filtering their grey."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from convtool.errors import ImageError

_EOI = b"\xff\xd9"
_PADDINGS = (b"\x55",)
_PADDING_BYTES = 1 << 16


def check_scan_size(im: Any, fp: BinaryIO, name: str) -> None:
    """Refuse, before decoding, a baseline JPEG too short to hold its frame's blocks.

    In a baseline scan each 8x8 block of the first component costs at least two bits (a DC
    code and an end-of-block code, each at least one bit long), so a file of fewer bytes than
    a quarter of those blocks is cut short, whatever its tables. Progressive scans (whose
    end-of-band runs cover many blocks at once) are not bounded this way.
    """
    if im.format not in ("JPEG", "MPO") or im.info.get("progressive") or im.info.get("progression"):
        return
    blocks = -(-int(im.width) // 8) * -(-int(im.height) // 8)
    here = fp.tell()
    size = fp.seek(0, io.SEEK_END)
    fp.seek(here)
    if size < blocks // 4:
        raise ImageError(
            f"{name}: a {im.width}x{im.height} JPEG of {size} bytes, fewer than the "
            f"{blocks // 4} its {blocks} blocks need at least: the file is cut short or its "
            "frame header is damaged; give the complete file"
        )


def check_complete(
    im: Any, data: np.ndarray, fp: BinaryIO, decode: Callable[[bytes], np.ndarray | None], name: str
) -> None:
    """Refuse a JPEG whose data ended before its last blocks (decoded as flat grey).

    ``data`` is its decoded pixels, ``decode`` decodes JPEG bytes (None when they fail). A cut
    scan leaves its last rows one flat value; only then, the file is decoded again with filler
    bytes in front of its end marker: a complete scan never reads them, a cut one does, and its
    pixels change. A progressive JPEG cut in a later scan is not flat, only blurred: it is
    always decoded again so.
    """
    if data.size == 0:
        return
    tail = data[-min(8, data.shape[0]) :]
    if not _progressive(im) and not np.all(tail == tail.flat[0]):
        return
    fp.seek(0)
    raw = fp.read()
    end = raw.rfind(_EOI)
    body = raw if end < 0 else raw[:end]
    reference = decode(raw)
    for padding in _PADDINGS:
        other = decode(body + padding * _PADDING_BYTES + _EOI)
        if reference is None or other is None or not np.array_equal(reference, other):
            raise ImageError(
                f"{name}: the JPEG's data ends before its last rows (premature end of data "
                "segment: the file is cut short, and what is missing would be filtered as grey); "
                "give the complete file"
            )


def _progressive(im: Any) -> bool:
    return bool(im.info.get("progressive") or im.info.get("progression"))
