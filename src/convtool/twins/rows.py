"""Sums of taps over rows as the jitted loops group them, and the bands twins run on threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

BAND = 32
"""Output rows a twin computes at a time: the gathered rows of a band stay in the cache."""


def add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """a + b into a's memory; None stands for a sum of zero products (see ``groups``)."""
    if a is None:
        return b
    if b is not None:
        a += b
    return a


def groups(
    view: Callable[[int, int], np.ndarray],
    taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    wide: type,
    dtype: type,
    skip_zeros: bool,
    signed_zeros: bool = False,
) -> np.ndarray:
    """Σ weight · view(row, offset) over the taps as ``_jit.rows.taps8`` sums them: groups of eight
    as ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)), products and sums in ``wide``, the
    first group stored, each later one added to the stored row, the row kept in ``dtype``.

    With ``skip_zeros`` (finite samples) zero weights are left out: a product 0·x is ±0, and
    adding it changes at most the sign of a zero sum, which no integer output shows and which
    ``signed_zeros`` (float output, ``wide`` the stored type) restores."""
    rows, offsets, weights = taps
    buffers: list[np.ndarray | None] = [None] * 8
    acc: np.ndarray | None = None
    for k in range(0, len(rows), 8):
        p: list[np.ndarray | None] = []
        for t in range(k, k + 8):
            if skip_zeros and weights[t] == 0:
                p.append(None)
                continue
            x = view(rows[t], offsets[t])
            buffer = buffers[t - k]
            if buffer is None:
                buffer = buffers[t - k] = np.empty(x.shape, wide)
            p.append(np.multiply(x, wide(weights[t]), out=buffer))
        g = add(add(add(p[0], p[1]), add(p[2], p[3])), add(add(p[4], p[5]), add(p[6], p[7])))
        if g is None:
            continue
        if acc is None:
            acc = g.astype(dtype)  # a copy: g is a buffer, used again by the next group
        elif wide is dtype:
            acc += g
        else:
            acc = (acc.astype(wide) + g).astype(dtype)
    if acc is None:  # every weight zero
        acc = np.zeros(view(0, 0).shape, dtype)
    if skip_zeros and signed_zeros:
        terms = [(partial(view, r, o), w) for r, o, w in zip(rows, offsets, weights, strict=True)]
        zero_signs(acc, terms, wide)
    return acc


def zero_signs(
    acc: np.ndarray, terms: Sequence[tuple[Callable[..., np.ndarray], Any]], wide: type
) -> None:
    """Give ``acc``'s exact zeros the sign the full sum has when zero weights were skipped: a
    sum of zeros is −0 only when every term is, and a cancellation gives +0."""
    where = np.nonzero(acc == 0)
    if not len(where[0]):
        return
    negative = np.ones(len(where[0]), bool)
    for x, weight in terms:
        t = np.multiply(x()[where], wide(weight), dtype=wide)
        negative &= (t == 0) & np.signbit(t)
        if not negative.any():
            break
    acc[where] = np.where(negative, acc.dtype.type(-0.0), acc.dtype.type(0.0))


def may_skip_zeros(src: np.ndarray) -> bool:
    """Whether zero weights may be left out: every sample finite (0·inf is NaN)."""
    return src.dtype.kind in "ui" or bool(np.isfinite(src).all())


def run_bands(ho: int, work: Callable[[int, int], None], band: int = BAND) -> None:
    """``work(r0, r1)`` over bands of an even number of output rows, on a few threads (numpy
    releases the GIL in its loops; every band writes its own rows). No floating-point warnings:
    inf and NaN samples give what the jitted loops give, silently."""

    def one(r0: int) -> None:
        with np.errstate(all="ignore"):
            work(r0, min(ho, r0 + band))

    starts = range(0, ho, band)
    workers = min(len(starts), os.cpu_count() or 1)
    if workers <= 1:
        for r0 in starts:
            one(r0)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, starts))
