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


# --- learn: normal equations and gradients ---
#
# One pair at a time: ``src`` (H, W·C) the input, ``target`` (Ht, Wt·C) the target, both float32
# or both float64. The valid-output sample (i, j, c), i < H − kh + 1, j < W − kw + 1, is
# compared with ``target[i + oy, (j + ox)·C + c]``; its patch is ``src[i + a, (j + b)·C + c]``
# for the n = kh·kw taps p = a·kw + b. A target sample outside the open interval (lo, hi) is
# left out (clipped); pass −inf, +inf to keep all. Each of ``nchunks`` parallel chunks of rows
# sums into its own partial array (float64), and the partials are added at the end: nothing
# of the size (pixels × n) is ever built.


@_serial
def _learn_target_row(trow, start, lo, hi, used, value):
    """Load target samples ``trow[start : start + len(value)]`` as float64 into ``value``; mark
    in ``used`` (1.0 or 0.0) those inside (lo, hi), which are kept (the others read 0 in
    ``value``). Return how many were left out."""
    left_out = 0
    for q in range(value.shape[0]):
        y = np.float64(trow[start + q])
        if lo < y < hi:
            used[q] = 1.0
            value[q] = y
        else:
            used[q] = 0.0
            value[q] = 0.0
            left_out += 1
    return left_out


@_parallel
def learn_normal_equations(src, channels, target, oy, ox, kh, kw, lo, hi, nchunks, gram, counts):
    """Add one pair's normal equations to ``gram`` and its sample counts to ``counts``.

    With z = (x_0 … x_{n−1}, 1, y) for every kept sample, ``gram`` (n + 2, n + 2) += Σ z zᵀ:
    XᵀX in ``[:n, :n]``, the bias column Σx in ``[:n, n]``, Xᵀy in ``[:n, n + 1]``, the sample
    count in ``[n, n]``, Σy in ``[n, n + 1]`` and Σy² in ``[n + 1, n + 1]`` (both triangles
    filled). ``counts`` (int64) += (samples kept, samples left out).
    """
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    m = n + 2
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros((nchunks, m, m))
    left_out = np.zeros(nchunks, dtype=np.int64)
    used = np.empty((nchunks, length))
    value = np.empty((nchunks, length))
    tap = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        acc = partial[t]
        u = used[t]
        y = value[t]
        xu = tap[t]
        for i in range(t * step, min(ho, (t + 1) * step)):
            left_out[t] += _learn_target_row(target[i + oy], ox * channels, lo, hi, u, y)
            for p in range(n):
                col = (p % kw) * channels
                xp = src[i + p // kw, col : col + length]
                s1 = 0.0
                sy = 0.0
                for q in range(length):
                    v = u[q] * np.float64(xp[q])
                    xu[q] = v
                    s1 += v
                    sy += v * y[q]
                acc[p, n] += s1
                acc[p, n + 1] += sy
                for r in range(p, n):
                    col = (r % kw) * channels
                    xr = src[i + r // kw, col : col + length]
                    s = 0.0
                    for q in range(length):
                        s += xu[q] * np.float64(xr[q])
                    acc[p, r] += s
            s1 = 0.0
            sy = 0.0
            syy = 0.0
            for q in range(length):
                s1 += u[q]
                sy += y[q]
                syy += y[q] * y[q]
            acc[n, n] += s1
            acc[n, n + 1] += sy
            acc[n + 1, n + 1] += syy
    for t in range(nchunks):
        counts[0] += np.int64(partial[t, n, n])
        counts[1] += left_out[t]
        for p in range(m):
            for r in range(p, m):
                gram[p, r] += partial[t, p, r]
    for p in range(m):
        for r in range(p):
            gram[p, r] = gram[r, p]


@_parallel
def learn_residuals(
    src, channels, target, oy, ox, kernel, bias, lo, hi, shift, gradient, nchunks, out
):
    """Residuals r = X ⋆ K + bias − Y of one pair over its kept samples, added to ``out``.

    ``kernel`` (kh, kw) float64. ``out`` (n + 7) float64: ``[:n]`` += Σ r·x_p (half the
    gradient of Σ r² with respect to K; only when ``gradient``), ``[n]`` += Σ r (half its
    derivative with respect to the bias), ``[n + 1]`` += Σ r², ``[n + 2]`` = max(itself,
    max |r|), ``[n + 3]`` += samples kept, ``[n + 4]`` += samples left out, ``[n + 5]`` +=
    Σ (y − shift), ``[n + 6]`` += Σ (y − shift)² (for R², ``shift`` near the mean of y).
    """
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros((nchunks, n + 7))
    used = np.empty((nchunks, length))
    value = np.empty((nchunks, length))
    res = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        acc = partial[t]
        u = used[t]
        y = value[t]
        r = res[t]
        for i in range(t * step, min(ho, (t + 1) * step)):
            acc[n + 4] += _learn_target_row(target[i + oy], ox * channels, lo, hi, u, y)
            for q in range(length):
                r[q] = bias
            for p in range(n):
                col = (p % kw) * channels
                xp = src[i + p // kw, col : col + length]
                wt = kernel[p // kw, p % kw]
                for q in range(length):
                    r[q] += wt * np.float64(xp[q])
            s = 0.0
            ss = 0.0
            big = acc[n + 2]
            s1 = 0.0
            sy = 0.0
            syy = 0.0
            for q in range(length):
                e = u[q] * (r[q] - y[q])
                r[q] = e
                s += e
                ss += e * e
                big = max(big, abs(e))
                d = u[q] * (y[q] - shift)
                s1 += u[q]
                sy += d
                syy += d * d
            acc[n] += s
            acc[n + 1] += ss
            acc[n + 2] = big
            acc[n + 3] += s1
            acc[n + 5] += sy
            acc[n + 6] += syy
            if gradient:
                for p in range(n):
                    col = (p % kw) * channels
                    xp = src[i + p // kw, col : col + length]
                    g = 0.0
                    for q in range(length):
                        g += r[q] * np.float64(xp[q])
                    acc[p] += g
    for t in range(nchunks):
        for p in range(n + 7):
            if p == n + 2:
                out[p] = max(out[p], partial[t, p])
            else:
                out[p] += partial[t, p]
