"""numpy twins of learn's jitted passes over stored integer samples.

A twin takes the arguments of its namesake in ``convtool._jit`` and gives the same bytes while
the compiled core is not in numba's cache yet. ``learn_normal_equations`` sums products of
samples; the jitted pass reassociates those sums (fastmath), so in general no other order gives
its bits, but over integer-valued data (8- and 16-bit samples, or those minus an integer
centre) every product and every partial sum is an integer, exact in float64 below 2**53, and
the same in any order: here blocks of patches and a matrix product (BLAS, fused multiply-adds
and all). The caller keeps each call's sums below 2**53 (``learn.EXACT_SUM``). Over float data
the twins are not exact and are not used. ``learn_largest_error`` computes each residual in the
jitted pass's order without fastmath; a maximum is the same in any order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from convtool.bundles import LearnPair

BLOCK_VALUES = 1 << 22
"""float64 values (32 MiB) a thread's block of patches holds at most: samples × (taps + 2)."""

T = TypeVar("T")


def _blocks(rows: int, length: int, values: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) covering ``rows``, each of about BLOCK_VALUES / ``values`` samples
    (rows of ``length`` samples)."""
    step = max(1, BLOCK_VALUES // (values * max(1, length)))
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


def _map(work: Callable[[tuple[int, int]], T], blocks: list[tuple[int, int]]) -> list[T]:
    """``work`` over ``blocks`` on a thread per core (numpy releases the GIL in its loops)."""
    threads = min(len(blocks), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)  # fmt: skip
    if threads <= 1:
        return [work(b) for b in blocks]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, blocks))


def _target(
    target: np.ndarray, r0: int, r1: int, start: int, length: int, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Target samples ``[start, start + length)`` of rows r0..r1 − 1 as float64, and the mask
    of those inside (lo, hi), which are kept (``_jit.learn._learn_target_row``)."""
    y = target[r0:r1, start : start + length].astype(np.float64)
    return y, (lo < y) & (y < hi)


def learn_normal_equations(
    pair: LearnPair, kh: int, kw: int, nchunks: int, gram: np.ndarray, counts: np.ndarray
) -> None:
    """The twin of ``_jit.learn.learn_normal_equations`` (there the layout) for integer-valued data.

    Σ z zᵀ of z = (x_0 … x_{n−1}, 1, y) over every sample, less the same sum over the samples
    left out (exact integers: the difference is exact too). Over every sample, the products of
    taps (a, b) and (a', b') are the sums over rows r = a … a + ho − 1 of the products along
    row r and row r + a' − a, shared by all a (:func:`_row_products`).
    """
    src, channels, target, oy, ox, lo, hi = pair
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    m = n + 2

    def block(rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        i0, i1 = rows
        x = src[i0 : i1 + kh - 1].astype(np.float64)
        windows = np.stack([x[:, b * channels : b * channels + length] for b in range(kw)], 1)
        end = i1 if i1 < ho else src.shape[0]  # the last block also has the bottom rows
        products, sums = _row_products(windows, kh, i0, end, ho, src.shape[0])
        y, used = _target(target, i0 + oy, i1 + oy, ox * channels, length, lo, hi)
        xy = np.stack([np.matmul(windows[a : a + i1 - i0], y[:, :, None]).sum(axis=0)[:, 0]
                       for a in range(kh)])  # fmt: skip
        cross = np.concatenate([xy.ravel(), [y.sum(), (y * y).sum()]])
        left_out = _patch_gram(x, y, ~used, kh, kw, channels)
        return products, sums, cross, left_out, int(np.count_nonzero(~used))

    total = np.zeros((m, m))
    excluded = 0
    for products, sums, cross, left_out, count in _map(block, _blocks(ho, length, m)):
        for a in range(kh):
            total[a * kw : (a + 1) * kw, n] += sums[a]
            for a2 in range(a, kh):
                total[a * kw : (a + 1) * kw, a2 * kw : (a2 + 1) * kw] += products[a, a2 - a]
        total[:n, n + 1] += cross[:n]
        total[n, n + 1] += cross[n]
        total[n + 1, n + 1] += cross[n + 1]
        total -= left_out  # integers below 2**53: exact, in any order
        excluded += int(count)
    total[n, n] += ho * length
    counts[0] += ho * length - excluded
    counts[1] += excluded
    upper = np.triu_indices(m)
    gram[upper] += total[upper]
    lower = np.tril_indices(m, -1)
    gram[lower] = gram.T[lower]


def _row_products(
    windows: np.ndarray, kh: int, i0: int, end: int, ho: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Of the input rows r = i0 … end − 1 (``windows[r − i0, b]`` = row r from tap column b on,
    through the rows r + kh − 1 at least where they exist): ``products[a, d, b, b']`` = Σ over
    those r in a … a + ho − 1 of row r at b times row r + d at b', and ``sums[a, b]`` = Σ over
    them of row r at b."""
    kw = windows.shape[1]
    rows = np.zeros((end - i0, kh, kw, kw))
    for d in range(kh):
        last = min(end, height - d) - i0
        np.matmul(windows[:last], windows[d : last + d].transpose(0, 2, 1), out=rows[:last, d])
    row_sums = windows[: end - i0].sum(axis=2)
    products = np.zeros((kh, kh, kw, kw))
    sums = np.zeros((kh, kw))
    for a in range(kh):
        r0, r1 = max(i0, a) - i0, min(end, a + ho) - i0
        if r1 > r0:
            products[a] = rows[r0:r1].sum(axis=0)
            sums[a] = row_sums[r0:r1].sum(axis=0)
    return products, sums


def _patch_gram(
    x: np.ndarray, y: np.ndarray, which: np.ndarray, kh: int, kw: int, channels: int
) -> np.ndarray:
    """Σ z zᵀ over the samples ``which`` (a mask over ``y``), z their patch of ``x``, 1, y."""
    n = kh * kw
    at = np.flatnonzero(which)
    length = y.shape[1]
    start = at // length * x.shape[1] + at % length  # the patches' corners in ``x``, flattened
    z = np.empty((n + 2, at.size))
    for p in range(n):
        z[p] = x.ravel()[start + (p // kw * x.shape[1] + p % kw * channels)]
    z[n] = 1.0
    z[n + 1] = y.ravel()[at]
    return z @ z.T


def learn_largest_error(
    pair: LearnPair, kernel: np.ndarray, bias: float, nchunks: int, out: np.ndarray
) -> None:
    """The twin of ``_jit.learn.learn_largest_error``: ``out[0]`` = max(itself, max |X ⋆ K + bias −
    Y|) over the kept samples, each residual rounded as there."""
    src, channels, target, oy, ox, lo, hi = pair
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw

    def block(rows: tuple[int, int]) -> float:
        r0, r1 = rows
        x = src[r0 : r1 + kh - 1].astype(np.float64)
        r = np.full((r1 - r0, length), np.float64(bias))
        tap = np.empty_like(r)
        for p in range(n):
            col = (p % kw) * channels
            np.multiply(kernel[p // kw, p % kw], x[p // kw : r1 - r0 + p // kw, col : col + length],
                        out=tap)  # fmt: skip
            r += tap
        y, used = _target(target, r0 + oy, r1 + oy, ox * channels, length, lo, hi)
        r -= y
        np.abs(r, out=r)
        return float(r.max(initial=0.0, where=used))

    big = max(_map(block, _blocks(ho, length, 16)), default=0.0)  # in the cache
    out[0] = max(float(out[0]), big)
