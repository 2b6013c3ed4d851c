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

BLOCK = 1 << 16
"""Samples per block of patches (with 25 taps, 14 MB of float64 per thread)."""

T = TypeVar("T")


def _blocks(rows: int, length: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) of about BLOCK samples (each ``length`` long) covering ``rows``."""
    step = max(1, BLOCK // max(1, length))
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
    of those inside (lo, hi), which are kept (``_jit._learn_target_row``)."""
    y = target[r0:r1, start : start + length].astype(np.float64)
    return y, (lo < y) & (y < hi)


def learn_normal_equations(
    src: np.ndarray,
    channels: int,
    target: np.ndarray,
    oy: int,
    ox: int,
    kh: int,
    kw: int,
    lo: float,
    hi: float,
    nchunks: int,
    gram: np.ndarray,
    counts: np.ndarray,
) -> None:
    """The twin of ``_jit.learn_normal_equations`` (there the layout) for integer-valued data:
    Σ z zᵀ of z = (x_0 … x_{n−1}, 1, y) over the kept samples, as ZZᵀ by blocks."""
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    m = n + 2

    def block(rows: tuple[int, int]) -> tuple[np.ndarray, int, int]:
        r0, r1 = rows
        y, used = _target(target, r0 + oy, r1 + oy, ox * channels, length, lo, hi)
        z = np.zeros((m, r1 - r0, length))
        for p in range(n):
            col = (p % kw) * channels
            taps = src[r0 + p // kw : r1 + p // kw, col : col + length]
            np.copyto(z[p], taps, where=used)
        z[n] = used
        np.copyto(z[n + 1], y, where=used)
        flat = z.reshape(m, -1)
        kept = int(np.count_nonzero(used))
        return flat @ flat.T, kept, used.size - kept

    total = np.zeros((m, m))
    for part, kept, left_out in _map(block, _blocks(ho, length)):
        total += part  # integers below 2**53: exact, in any order
        counts[0] += kept
        counts[1] += left_out
    upper = np.triu_indices(m)
    gram[upper] += total[upper]
    lower = np.tril_indices(m, -1)
    gram[lower] = gram.T[lower]


def learn_largest_error(
    src: np.ndarray,
    channels: int,
    target: np.ndarray,
    oy: int,
    ox: int,
    kernel: np.ndarray,
    bias: float,
    lo: float,
    hi: float,
    nchunks: int,
    out: np.ndarray,
) -> None:
    """The twin of ``_jit.learn_largest_error``: ``out[0]`` = max(itself, max |X ⋆ K + bias −
    Y|) over the kept samples, each residual rounded as there."""
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw

    def block(rows: tuple[int, int]) -> float:
        r0, r1 = rows
        r = np.full((r1 - r0, length), np.float64(bias))
        tap = np.empty_like(r)
        for p in range(n):
            col = (p % kw) * channels
            np.multiply(
                kernel[p // kw, p % kw], src[r0 + p // kw : r1 + p // kw, col : col + length],
                out=tap, dtype=np.float64,
            )  # fmt: skip
            r += tap
        y, used = _target(target, r0 + oy, r1 + oy, ox * channels, length, lo, hi)
        r -= y
        np.abs(r, out=r)
        return float(r.max(initial=0.0, where=used))

    big = max(_map(block, _blocks(ho, length)), default=0.0)
    out[0] = max(float(out[0]), big)
