"""learn's passes over image pairs: normal equations, residuals, the largest error.

One pair at a time, a ``bundles.LearnPair``: ``src`` (H, W·C) the input, ``target`` (Ht, Wt·C)
the target, both float32 or both float64. The valid-output sample (i, j, c),
i < H − kh + 1, j < W − kw + 1, is compared with ``target[i + oy, (j + ox)·C + c]``; its patch
is ``src[i + a, (j + b)·C + c]`` for the n = kh·kw taps p = a·kw + b. A target sample outside
the open interval (lo, hi) is left out (clipped); pass −inf, +inf to keep all. Each of
``nchunks`` parallel chunks of rows sums into its own partial array (float64), and the partials
are added at the end: nothing of the size (pixels × n) is ever built.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import parallel, parallel_reductions, serial


@serial
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


@parallel_reductions
def learn_normal_equations(pair, kh, kw, nchunks, gram, counts):
    """Add one pair's normal equations to ``gram`` and its sample counts to ``counts``.

    With z = (x_0 … x_{n−1}, 1, y) for every kept sample, ``gram`` (n + 2, n + 2) += Σ z zᵀ:
    XᵀX in ``[:n, :n]``, the bias column Σx in ``[:n, n]``, Xᵀy in ``[:n, n + 1]``, the sample
    count in ``[n, n]``, Σy in ``[n, n + 1]`` and Σy² in ``[n + 1, n + 1]`` (both triangles
    filled). ``counts`` (int64) += (samples kept, samples left out). ``pair`` is a
    ``bundles.LearnPair``.
    """
    src, channels, target, oy, ox, lo, hi = pair
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


@serial
def _prediction_row(src, i, channels, kernel, bias, r):
    """``r`` = output row i of X ⋆ K + bias (valid correlation, float64), tap by tap."""
    kh, kw = kernel.shape
    length = r.shape[0]
    for q in range(length):
        r[q] = bias
    for p in range(kh * kw):
        col = (p % kw) * channels
        xp = src[i + p // kw, col : col + length]
        wt = kernel[p // kw, p % kw]
        for q in range(length):
            r[q] += wt * np.float64(xp[q])


@parallel_reductions
def learn_residuals(pair, kernel, bias, shift, gradient, nchunks, out):
    """Residuals r = X ⋆ K + bias − Y of one pair over its kept samples, added to ``out``.

    ``kernel`` (kh, kw) float64. ``out`` (n + 7) float64: ``[:n]`` += Σ r·x_p (half the
    gradient of Σ r² with respect to K; only when ``gradient``), ``[n]`` += Σ r (half its
    derivative with respect to the bias), ``[n + 1]`` += Σ r², ``[n + 2]`` = max(itself,
    max |r|), ``[n + 3]`` += samples kept, ``[n + 4]`` += samples left out, ``[n + 5]`` +=
    Σ (y − shift), ``[n + 6]`` += Σ (y − shift)² (for R², ``shift`` near the mean of y).
    """
    src, channels, target, oy, ox, lo, hi = pair
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
            _prediction_row(src, i, channels, kernel, bias, r)
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


@parallel
def learn_largest_error(pair, kernel, bias, nchunks, out):
    """``out[0]`` = max(itself, max |X ⋆ K + bias − Y|) over one pair's kept samples.

    Each residual is bias + Σ_p K_p·x_p − y, the taps added in order, without fastmath (no
    fused multiply-adds): the same rounding as its numpy twin, and a maximum is the same in
    any order, so the figure is the same bytes with a cold cache as with a warm one.
    """
    src, channels, target, oy, ox, lo, hi = pair
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros(nchunks)
    res = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        r = res[t]
        big = 0.0
        for i in range(t * step, min(ho, (t + 1) * step)):
            _prediction_row(src, i, channels, kernel, bias, r)
            trow = target[i + oy]
            for q in range(length):
                y = np.float64(trow[ox * channels + q])
                if lo < y < hi:
                    big = max(big, abs(r[q] - y))
        partial[t] = big
    for t in range(nchunks):
        out[0] = max(out[0], partial[t])
