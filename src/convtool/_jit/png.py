"""PNG row filters: each row filtered by the type libpng's heuristic chooses."""

from __future__ import annotations

import numpy as np

from convtool._jit._options import leaf, serial


@serial
def _paeth(a, b, c):
    """PNG's Paeth predictor: of a (left), b (above) and c (above-left), the one nearest to
    a + b − c, ties in that order."""
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)


@leaf
def png_filter(src, r0, r1, bpp, out):
    """Rows [r0, r1) of ``src`` (H, L uint8, ``bpp`` bytes per pixel) into the same rows of
    ``out`` (H, 1 + L): [type, the row filtered by PNG filter ``type``], ``type`` the filter
    whose bytes have the least sum of magnitudes read as signed bytes (libpng's heuristic;
    ties go to the lower type). Serial and without the GIL: the PNG writer runs pieces on
    Python threads (a ``prange`` loop here is much slower to compile on a cold cache).

    Rows are copied into int16 buffers with ``bpp`` zeros in front, so that the neighbours
    left (a), above (b) and above-left (c) are plain slices, as the filters define them."""
    n = src.shape[1]
    cur = np.zeros(n + bpp, np.int16)
    prev = np.zeros(n + bpp, np.int16)
    if r0 > 0:
        above = src[r0 - 1]
        for q in range(n):
            prev[bpp + q] = above[q]
    for i in range(r0, r1):
        row = src[i]
        for q in range(n):  # a loop: a slice assignment compiles slowly
            cur[bpp + q] = row[q]
        x, a, b, c = cur[bpp:], cur[:n], prev[bpp:], prev[:n]
        s0 = s1 = s2 = s3 = s4 = 0
        for q in range(n):
            xi, ai, bi, ci = np.int32(x[q]), np.int32(a[q]), np.int32(b[q]), np.int32(c[q])
            v1 = (xi - ai) & 255
            v2 = (xi - bi) & 255
            v3 = (xi - ((ai + bi) >> 1)) & 255
            v4 = (xi - _paeth(ai, bi, ci)) & 255
            s0 += min(xi, 256 - xi)
            s1 += min(v1, 256 - v1)
            s2 += min(v2, 256 - v2)
            s3 += min(v3, 256 - v3)
            s4 += min(v4, 256 - v4)
        kind, best = 0, s0
        if s1 < best:
            kind, best = 1, s1
        if s2 < best:
            kind, best = 2, s2
        if s3 < best:
            kind, best = 3, s3
        if s4 < best:
            kind = 4
        o = out[i]
        o[0] = kind
        f = o[1:]
        for q in range(n):
            xi, ai, bi, ci = np.int32(x[q]), np.int32(a[q]), np.int32(b[q]), np.int32(c[q])
            pred = 0 if kind == 0 else ai if kind == 1 else bi if kind == 2 else _paeth(ai, bi, ci)
            if kind == 3:
                pred = (ai + bi) >> 1
            f[q] = (xi - pred) & 255
        cur, prev = prev, cur
