"""How well a learned kernel fits: RMSE, largest error and R² over the samples used."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convtool import compiled
from convtool.bundles import LearnPair
from convtool.learn.gram import correlated_planes, valid_correlation
from convtool.learn.lstsq import RawPart
from convtool.learn.pairs import Pair, aligned, nchunks, pair_work
from convtool.learn.work import use_fft


def residuals(pairs: list[Pair], weights: np.ndarray, b: float, gradient: bool) -> np.ndarray:
    """Per pair ``_jit.learn_residuals`` outputs, one row each (see there for the layout);
    without the gradient, by FFT for a pair whose normal equations take the FFT route."""
    kernel = np.ascontiguousarray(weights, dtype=np.float64)
    kh, kw = kernel.shape
    n = kernel.size
    out = np.zeros((len(pairs), n + 7))
    for k, p in enumerate(pairs):
        if not gradient and use_fft(pair_work(p, kh, kw), kh, kw):
            x, y = aligned(p.src, p.target, p, kh, kw)
            r = valid_correlation(x, kernel) + b - y
            kept = (p.lo < y) & (y < p.hi)
            used = r[kept]
            d = y[kept] - p.shift
            out[k, n : n + 7] = (
                used.sum(),
                np.square(used).sum(),
                np.abs(used).max(initial=0.0),
                used.size,
                kept.size - used.size,
                d.sum(),
                np.square(d).sum(),
            )
            continue
        chunks = nchunks(p.src.shape[0] - kernel.shape[0] + 1, n)
        compiled.call(
            "learn_residuals",
            (
                LearnPair(p.src, p.channels, p.target, p.oy, p.ox, p.lo, p.hi),
                kernel,
                float(b),
                p.shift,
                gradient,
                chunks,
                out[k],
            ),
        )
    return out


def fit_figures(pairs: list[Pair], weights: np.ndarray, b: float) -> dict[str, Any]:
    """RMSE, largest error, R² and sample counts of the fit ``weights`` (correlation) + ``b``."""
    out = residuals(pairs, weights, b, gradient=False)
    n = weights.size
    used = int(out[:, n + 3].sum())
    clipped = int(out[:, n + 4].sum())
    if used == 0:
        return {"used": 0, "clipped": clipped, "rmse": None, "max_error": None, "r2": None}
    sse = float(out[:, n + 1].sum())
    counts = out[:, n + 3]
    shifts = np.array([p.shift for p in pairs])
    s1, s2 = out[:, n + 5], out[:, n + 6]
    mean = float((s1 + counts * shifts).sum() / used)
    d = mean - shifts
    sst = float((s2 - 2 * d * s1 + counts * d * d).sum())
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(sse / used),
        "max_error": float(out[:, n + 2].max()),
        "r2": 1.0 - sse / sst if sst > 0 else None,
    }


def exact_figures(
    pairs: list[Pair], parts: list[RawPart], weights: np.ndarray, b: float
) -> dict[str, Any]:
    """The figures of :func:`fit_figures` from the exact normal equations: Σr² as the quadratic
    form of the fit over them, in exact rational arithmetic (correctly rounded, and 0 for an
    exact fit), Σy and Σy² likewise, and the largest error from a pass of its own."""
    from fractions import Fraction

    used = sum(q.kept for q in parts)
    clipped = sum(q.left_out for q in parts)
    if used == 0:
        return {"used": 0, "clipped": clipped, "rmse": None, "max_error": None, "r2": None}
    n = weights.size
    k = [Fraction(float(v)) for v in weights.ravel()]
    bias = Fraction(float(b))
    sum_k = sum(k, Fraction(0))
    sse = s1 = s2 = Fraction(0)
    for q in parts:
        sx, sy = q.top_x, q.top_y
        # sx·sy·r = w · v for v = (x − c, 1, y − d) and r = K·x/sx + b − y/sy
        w = [kp * sy for kp in k]
        w += [sy * q.c * sum_k + bias * sx * sy - sx * q.d, Fraction(-sx)]
        den = math.lcm(*(f.denominator for f in w))
        wi = [int(f * den) for f in w]
        sse += Fraction(quadratic(q.gram, wi), (den * sx * sy) ** 2)
        count, sum_y, sum_yy = (int(q.gram[i, j]) for i, j in ((n, n), (n, n + 1), (n + 1, n + 1)))
        s1 += Fraction(sum_y + count * q.d, sy)
        s2 += Fraction(sum_yy + 2 * q.d * sum_y + count * q.d**2, sy**2)
    sst = s2 - s1 * s1 / used
    return {
        "used": used,
        "clipped": clipped,
        "rmse": math.sqrt(float(sse / used)),
        "max_error": _largest_error(pairs, weights, b),
        "r2": float(1 - sse / sst) if sst > 0 else None,
    }


LIMB_BITS = 31
"""The exact int64 Gram matrix is split into two halves of this many bits for products."""


def quadratic(gram: np.ndarray, w: list[int]) -> int:
    """wᵀ G w exactly, for integers w (Python ints, any size) and G of int64 (or of Python
    ints). An int64 G (|G| < 2**62) is split as G1·2**31 + G0 and w into limbs small enough that
    the int64 products G0·W and G1·W cannot overflow; the limbs are put together in Python ints
    row by row (O(n) big-integer work rather than O(n²))."""
    if gram.dtype == object:
        wi = np.array(w, dtype=object)
        return int(wi @ (gram @ wi))
    n = len(w)
    bits = 62 - LIMB_BITS - n.bit_length()
    limbs = max(1, -(-max(abs(v) for v in w).bit_length() // bits))
    mask = (1 << bits) - 1
    parts = np.array(
        [[(abs(v) >> (bits * k)) & mask for k in range(limbs)] for v in w], dtype=np.int64
    )
    parts *= np.array([(v > 0) - (v < 0) for v in w], dtype=np.int64)[:, np.newaxis]
    low = (gram & ((1 << LIMB_BITS) - 1)) @ parts
    high = (gram >> LIMB_BITS) @ parts
    total = 0
    for v, lo, hi in zip(w, low.tolist(), high.tolist(), strict=True):
        if v:
            row = sum(
                ((h << LIMB_BITS) + low_k) << (bits * k)
                for k, (low_k, h) in enumerate(zip(lo, hi, strict=True))
            )
            total += v * row
    return total


def _largest_error(pairs: list[Pair], weights: np.ndarray, b: float) -> float:
    """max |r| over the kept samples, from the stored integers in the target's stored units
    (by FFT for a pair whose normal equations take the FFT route)."""
    from convtool.twins import learn as learn_twins

    largest = 0.0
    kh, kw = weights.shape
    for p in pairs:
        r = p.raw
        assert r is not None
        if use_fft(pair_work(p, kh, kw), kh, kw):  # in the target's stored units
            x, y = aligned(r.src, r.target, p, kh, kw)
            planes = correlated_planes(x, weights * (r.top_y / r.top_x))
            for pred, yc in zip(planes, y, strict=True):  # a channel at a time bounds the memory
                res = (pred + float(b) * r.top_y - yc)[(r.lo < yc) & (yc < r.hi)]
                largest = max(largest, float(np.abs(res).max(initial=0.0)) / r.top_y)
            continue
        kernel = np.ascontiguousarray(weights * (r.top_y / r.top_x), dtype=np.float64)
        out = np.zeros(1)
        chunks = nchunks(r.src.shape[0] - kh + 1, weights.size)
        bundle = LearnPair(r.src, p.channels, r.target, p.oy, p.ox, r.lo, r.hi)
        args = (bundle, kernel, float(b) * r.top_y, chunks, out)
        compiled.run("learn_largest_error", args, learn_twins.learn_largest_error, now=False)
        largest = max(largest, float(out[0]) / r.top_y)
    return largest
