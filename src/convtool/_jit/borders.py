"""Border modes in jitted code: the position a pixel outside the image reads."""

from __future__ import annotations

from convtool._jit._options import serial

REFLECT, MIRROR, NEAREST, WRAP, CONSTANT = 0, 1, 2, 3, 4
"""The border codes (``convtool.choices.BORDER_CODES``, which this package may not import: a
test holds the two equal)."""


@serial
def map_index(x, n, mode):
    """Index into [0, n) that position ``x`` of the extended line reads; −1 means ``cval``."""
    if 0 <= x < n:
        return x
    if mode == REFLECT:  # reflect: d c b a | a b c d | d c b a
        p = 2 * n
        x = x % p
        return p - 1 - x if x >= n else x
    if mode == MIRROR:  # mirror: d c b | a b c d | c b a
        if n == 1:
            return 0
        p = 2 * n - 2
        x = x % p
        return p - x if x >= n else x
    if mode == NEAREST:  # nearest: a a a | a b c d | d d d
        return 0 if x < 0 else n - 1
    if mode == WRAP:  # wrap: b c d | a b c d | a b c
        return x % n
    return -1


@serial
def fill_strip(src, r, channels, x0, x1, mode, cval, dst):
    """Pixels [x0, x1) of source row ``r`` extended by ``mode`` into ``dst`` (r = −1: cval)."""
    w = src.shape[1] // channels
    for x in range(x0, x1):
        m = map_index(x, w, mode)
        base = (x - x0) * channels
        for c in range(channels):
            dst[base + c] = cval if (m < 0 or r < 0) else src[r, m * channels + c]
