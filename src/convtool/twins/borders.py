"""Border modes in numpy: the one numpy owner of the border index mapping (the twin of
``convtool._jit.borders``, tested against it)."""

from __future__ import annotations

import numpy as np

from convtool.choices import BORDER_CODES

REFLECT, MIRROR, NEAREST, WRAP, CONSTANT = (
    BORDER_CODES[b] for b in ("reflect", "mirror", "nearest", "wrap", "constant")
)


def border_index(positions: np.ndarray, n: int, mode: int) -> np.ndarray:
    """The index into [0, n) that each position of a line extended by border ``mode`` reads;
    −1 means cval. The vector form of ``_jit.borders.map_index`` (tested against it), and the one
    owner of the border rules in numpy."""
    x = np.asarray(positions, dtype=np.int64)
    inside = (x >= 0) & (x < n)
    if mode == REFLECT:
        p = 2 * n
        y = x % p
        y = np.where(y >= n, p - 1 - y, y)
    elif mode == MIRROR:
        if n == 1:
            y = np.zeros_like(x)
        else:
            p = 2 * n - 2
            y = x % p
            y = np.where(y >= n, p - y, y)
    elif mode == NEAREST:
        y = np.clip(x, 0, n - 1)
    elif mode == WRAP:
        y = x % n
    else:
        y = np.full_like(x, -1)
    return np.where(inside, x, y)


def extend_index(n: int, start: int, count: int, mode: int) -> np.ndarray:
    """``border_index`` of the positions ``start .. start + count − 1``."""
    return border_index(np.arange(start, start + count, dtype=np.int64), n, mode)


def gather(
    src: np.ndarray, rows: np.ndarray, cols: np.ndarray, channels: int, cval: object, dtype: type
) -> np.ndarray:
    """Rows ``rows`` and pixels ``cols`` of ``src`` (H, W·C) in ``dtype``; −1 gives cval."""
    elements = (np.maximum(cols, 0)[:, None] * channels + np.arange(channels)).ravel()
    block = src[np.maximum(rows, 0)][:, elements].astype(dtype)
    block[rows < 0] = cval
    block[:, np.repeat(cols < 0, channels)] = cval
    return block
