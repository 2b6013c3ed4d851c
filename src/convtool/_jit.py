"""The only numba module: every jitted loop of convtool, with its options set here once.

Functions take arrays and scalars only and read no globals. Images arrive as 2-D arrays of
shape (H, W·C) with the C channels interleaved, so one pass over a row serves every channel; a
tap at column offset b is the slice ``row[b·C : b·C + W·C]``, which numba vectorises.
Border modes are small ints (see ``correlate.BORDER_CODES``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}


def _parallel(fn: Callable[..., object]) -> Any:
    """Compile ``fn`` for the thread pool: ``prange`` loops run on every core."""
    return nb.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True)(fn)


def _serial(fn: Callable[..., object]) -> Any:
    """Compile a helper that the parallel loops call (inlined into them)."""
    return nb.njit(cache=True, fastmath=_FASTMATH, nogil=True, inline="always")(fn)


REFLECT, MIRROR, NEAREST, WRAP, CONSTANT = 0, 1, 2, 3, 4


@_serial
def map_index(x, n, mode):
    """Index into [0, n) that position ``x`` of the extended line reads; −1 means ``cval``."""
    if 0 <= x < n:
        return x
    if mode == 0:  # reflect: d c b a | a b c d | d c b a
        p = 2 * n
        x = x % p
        return p - 1 - x if x >= n else x
    if mode == 1:  # mirror: d c b | a b c d | c b a
        if n == 1:
            return 0
        p = 2 * n - 2
        x = x % p
        return p - x if x >= n else x
    if mode == 2:  # nearest: a a a | a b c d | d d d
        return 0 if x < 0 else n - 1
    if mode == 3:  # wrap: b c d | a b c d | a b c
        return x % n
    return -1


@_serial
def _fill_padded_row(src, v, channels, left, right, mode, cval, dst):
    """Write extended row ``v`` of ``src`` into ``dst``: ``left`` pixels before, ``right`` after."""
    h = src.shape[0]
    n = src.shape[1]
    w = n // channels
    r = map_index(v, h, mode)
    if r < 0:
        dst[:] = cval
        return
    row = src[r]
    body = dst[left * channels : left * channels + n]
    for q in range(n):
        body[q] = row[q]
    for x in range(-left, 0):
        m = map_index(x, w, mode)
        base = (x + left) * channels
        for c in range(channels):
            dst[base + c] = cval if m < 0 else row[m * channels + c]
    for x in range(w, w + right):
        m = map_index(x, w, mode)
        base = (x + left) * channels
        for c in range(channels):
            dst[base + c] = cval if m < 0 else row[m * channels + c]


@_parallel
def correlate_same(src, channels, kernel, mode, cval, out, nchunks):
    """Same-size correlation of ``src`` (H, W·C) with ``kernel`` into ``out`` (H, W·C).

    Each of ``nchunks`` parallel chunks of rows keeps a ring of ``kh`` padded rows, so every
    source row is extended once per chunk and the image is never copied whole.
    """
    h = src.shape[0]
    n = src.shape[1]
    w = n // channels
    kh, kw = kernel.shape
    ph = kh // 2
    pw = kw // 2
    padded = (w + kw - 1) * channels
    step = (h + nchunks - 1) // nchunks
    for t in nb.prange(nchunks):
        r0 = t * step
        r1 = min(h, r0 + step)
        if r0 >= r1:
            continue
        ring = np.empty((kh, padded), dtype=out.dtype)
        for a in range(kh - 1):
            _fill_padded_row(
                src, r0 - ph + a, channels, pw, kw - 1 - pw, mode, cval, ring[(r0 + a) % kh]
            )
        for i in range(r0, r1):
            _fill_padded_row(
                src, i - ph + kh - 1, channels, pw, kw - 1 - pw, mode, cval, ring[(i + kh - 1) % kh]
            )
            o = out[i]
            o[:] = 0
            for a in range(kh):
                row = ring[(i + a) % kh]
                for b in range(kw):
                    wt = kernel[a, b]
                    if wt == 0:
                        continue
                    s = row[b * channels : b * channels + n]
                    for q in range(n):
                        o[q] += wt * s[q]


@_parallel
def correlate_valid(src, channels, kernel, out):
    """Valid correlation (no padding): ``out`` is (H−kh+1, (W−kw+1)·C)."""
    ho = out.shape[0]
    n = out.shape[1]
    kh, kw = kernel.shape
    for i in nb.prange(ho):
        o = out[i]
        o[:] = 0
        for a in range(kh):
            row = src[i + a]
            for b in range(kw):
                wt = kernel[a, b]
                if wt == 0:
                    continue
                s = row[b * channels : b * channels + n]
                for q in range(n):
                    o[q] += wt * s[q]
