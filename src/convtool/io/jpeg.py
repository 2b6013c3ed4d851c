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
    im: Any,
    data: np.ndarray,
    fp: BinaryIO,
    decode: Callable[[bytes, bool], np.ndarray | None],
    name: str,
) -> None:
    """Refuse a JPEG whose data ended before its last blocks (decoded as flat grey).

    ``data`` is its decoded pixels, ``decode(raw, small)`` decodes JPEG bytes, at an eighth
    of their size when ``small`` (None when they fail). The file is decoded again with filler
    bytes in front of its end marker: a complete scan never reads them, a cut one does, and its
    pixels change. A baseline scan cut before its last block leaves that block's luma flat
    mid-grey (its coefficients zero): only then is it decoded again. A progressive JPEG cut in
    a later scan is not grey, only blurred: it is always decoded again, at full size (an
    eighth is its DC scan alone).
    """
    if data.size == 0 or not (_progressive(im) or _last_block_grey(data)):
        return
    fp.seek(0)
    raw = fp.read()
    end = raw.rfind(_EOI)
    body = raw if end < 0 else raw[:end]
    small = not _progressive(im)
    reference = decode(raw, small)
    for padding in _PADDINGS:
        other = decode(body + padding * _PADDING_BYTES + _EOI, small)
        if reference is None or other is None or not np.array_equal(reference, other):
            raise ImageError(
                f"{name}: the JPEG's data ends before its last rows (premature end of data "
                "segment: the file is cut short, and what is missing would be filtered as grey); "
                "give the complete file"
            )


_GREY = 128
_GREY_TOLERANCE = 3
"""How far the luma of RGB samples decoded from luma 128 may stray (rounding, clipping)."""


def _last_block_grey(data: np.ndarray) -> bool:
    """Whether the last 8x8 block on the block grid (a partial one at the bottom-right edge)
    has luma 128 throughout, as a block whose coefficients are missing decodes; colour
    layouts other than grey and RGB count as grey (decoded again, to be safe)."""
    block = data[(data.shape[0] - 1) // 8 * 8 :, (data.shape[1] - 1) // 8 * 8 :].astype(np.int32)
    if block.ndim == 3 and block.shape[2] == 3:
        block = (299 * block[..., 0] + 587 * block[..., 1] + 114 * block[..., 2] + 500) // 1000
    elif block.ndim == 3 and block.shape[2] != 1:
        return True
    return bool(np.all(np.abs(block - _GREY) <= _GREY_TOLERANCE))


def _progressive(im: Any) -> bool:
    return bool(im.info.get("progressive") or im.info.get("progression"))
