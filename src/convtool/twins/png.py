"""The twin of the jitted PNG row filter (``convtool._jit.png``)."""

from __future__ import annotations

import numpy as np


def png_filter(src: np.ndarray, r0: int, r1: int, bpp: int, out: np.ndarray) -> None:
    """The twin of ``_jit.png.png_filter``: rows [r0, r1) of ``src`` filtered into ``out``, each by
    the PNG filter type whose bytes have the least sum of magnitudes as signed bytes. Filtered
    bytes are differences modulo 256, which uint8 arithmetic gives as it wraps."""
    for s in range(r0, r1, 64):
        e = min(r1, s + 64)
        x = src[s:e]
        b = np.zeros_like(x)
        if s > 0:
            b[:] = src[s - 1 : e - 1]
        else:
            b[1:] = src[s : e - 1]
        a = np.zeros_like(x)
        a[:, bpp:] = x[:, :-bpp]
        c = np.zeros_like(b)
        c[:, bpp:] = b[:, :-bpp]
        a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
        pa, pb = np.abs(b16 - c16), np.abs(a16 - c16)
        pc = np.abs(a16 + b16 - 2 * c16)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        average = ((a16 + b16) >> 1).astype(np.uint8)
        filters = [x, x - a, x - b, x - average, x - paeth]
        cost = np.stack(
            [np.abs(f.view(np.int8), dtype=np.int16).sum(axis=1, dtype=np.int64) for f in filters]
        )
        kind = np.argmin(cost, axis=0)  # the first least: ties go to the lower type
        out[s:e, 0] = kind
        for t, f in enumerate(filters):
            chosen = kind == t
            out[s:e, 1:][chosen] = f[chosen]
