"""The Gram matrix of windows over some of an image's samples, from runs along its rows.

For planes X (C, H, W) and a kh × kw window, the window of sample (i, j) is
v(i, j) = X[:, i : i + kh, j : j + kw], n = C·kh·kw values in that order. Along a row the window
moves one column at a time: column b + 1 of v(i, j) is column b of v(i, j + 1). So over a run of
samples (i, j0) … (i, j1 − 1), the blocks of G = Σ v vᵀ between window columns b and b' obey

    G[(·, b + 1), (·, b' + 1)] = G[(·, b), (·, b')] + e_b e_b'ᵀ − s_b s_b'ᵀ

with s and e the windows at j0 and j1 (only their first kw − 1 columns, which lie inside the
image). The whole matrix follows from its first block row, Σ v(·, 0) vᵀ (kw times fewer
products than Σ v vᵀ), and the two ends of every run. A run of L samples then costs about
L·n²/kw + n² products instead of L·n²/2: long runs (the clipped regions of a blurred picture,
whole rows) go that way, short ones take the plain products. Over integers every sum is an
integer, the same in any order while it stays below 2**53: both ways give the same bytes.

Every matrix here is augmented as ``_jit.learn.learn_normal_equations`` lays it out:
Σ u uᵀ of u = (v, 1, y_0 … y_(m−1)) for the m targets given.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from convtool.learn.work import Meter

PATCH_VALUES = 1 << 21
"""float64 values (16 MiB) a block of gathered windows holds at most."""


def min_run(kw: int) -> int | None:
    """The shortest run worth its ends: L·n/kw + n < L·n/2 from L = this (None: never)."""
    if kw <= 2:
        return None
    return 2 * kw // (kw - 2) + 1


def runs(where: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, starts, ends) of the runs of True along the rows of the 2-D mask ``where``."""
    h, w = where.shape
    edges = np.zeros((h, w + 2), dtype=np.int8)
    edges[:, 1:-1] = where
    steps = np.diff(edges, axis=1)
    rows, starts = np.nonzero(steps == 1)  # row-major: the k-th start and end pair up
    _, ends = np.nonzero(steps == -1)
    return rows, starts, ends


def samples(
    rows: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, columns) of every sample of the runs, run after run."""
    lengths = ends - starts
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - first
    return np.repeat(rows, lengths), cols


def windows(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """The windows (kh × kw, every channel) of the samples (rows, cols) of ``x`` (H, W, C) as
    float64 (samples, C·kh·kw), in (channel, row, column) order."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))
    picked = view[rows, cols]  # (samples, C, kh, kw)
    return picked.reshape(len(rows), -1).astype(np.float64, copy=False)


def _spans(count: int, width: int) -> Iterator[tuple[int, int]]:
    step = max(1, PATCH_VALUES // max(1, width))
    for s0 in range(0, count, step):
        yield s0, min(count, s0 + step)


@dataclass
class Sums:
    """Σ u uᵀ under way: the samples summed as products go straight to ``out`` (times
    ``sign``); the runs keep their first block row ``head`` with its rows of 1 and y
    (C·kh + 1 + m × n), ``ends`` (Σ e eᵀ − s sᵀ) and ``tail`` (Σ (1, y)(1, y)ᵀ) until
    :meth:`finish` assembles them into ``out``."""

    head: np.ndarray
    ends: np.ndarray
    tail: np.ndarray
    out: np.ndarray
    sign: float = 1.0

    @classmethod
    def zeros(
        cls,
        channels: int,
        kh: int,
        kw: int,
        m: int,
        out: np.ndarray | None = None,
        sign: float = 1.0,
    ) -> Sums:
        """Empty sums for windows of ``channels`` × kh × kw and m targets, to go to ``out``
        ((n + 1 + m)², by default a new matrix of zeros) times ``sign``."""
        ck = channels * kh
        n = ck * kw
        if out is None:
            out = np.zeros((n + 1 + m, n + 1 + m))
        return cls(
            np.zeros((ck + 1 + m, n)),
            np.zeros((ck * (kw - 1), ck * (kw - 1))),
            np.zeros((1 + m, 1 + m)),
            out,
            sign,
        )

    def finish(self, channels: int, kh: int, kw: int) -> np.ndarray:
        """``out`` with the runs' part added (times ``sign``)."""
        ck = channels * kh
        g = assemble(self.head[:ck], self.ends, channels, kh, kw)
        if self.sign < 0:
            np.negative(g, out=g)
        n = len(g)
        self.out[:n, :n] += g
        del g
        sums = self.sign * self.head[ck:]
        self.out[n:, :n] += sums
        self.out[:n, n:] += sums.T
        self.out[n:, n:] += self.sign * self.tail
        return self.out


def _plain(
    sums: Sums,
    x: np.ndarray,
    ys: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    kh: int,
    kw: int,
    tick: Meter | None = None,
) -> None:
    """Add Σ u uᵀ over the samples (rows, cols): the products themselves, a block at a time
    (``tick`` told the fraction done after each)."""
    width = len(sums.out)
    n = width - 1 - ys.shape[2]
    for s0, s1 in _spans(len(rows), width):
        u = np.empty((s1 - s0, width))
        u[:, :n] = windows(x, rows[s0:s1], cols[s0:s1], kh, kw)
        u[:, n] = 1.0
        u[:, n + 1 :] = ys[rows[s0:s1], cols[s0:s1]]
        if sums.sign < 0:
            sums.out -= u.T @ u
        else:
            sums.out += u.T @ u
        if tick is not None:
            tick(s1 / len(rows))


def assemble(head: np.ndarray, ends: np.ndarray, channels: int, kh: int, kw: int) -> np.ndarray:
    """G = Σ v vᵀ from its first block row ``head`` (C·kh × n: Σ v(·, 0) vᵀ) and ``ends``
    (Σ e eᵀ − s sᵀ over the runs, for the first kw − 1 columns), by the recurrence of the module
    docstring for b ≤ b' and the symmetry for the rest."""
    c = channels
    n = c * kh * kw
    g = np.zeros((c, kh, kw, c, kh, kw))
    g[:, :, 0] = head.reshape(c, kh, c, kh, kw)
    d = ends.reshape(c, kh, kw - 1, c, kh, kw - 1)
    for b in range(1, kw):
        g[:, :, b, :, :, b:] = g[:, :, b - 1, :, :, b - 1 : kw - 1] + d[:, :, b - 1, :, :, b - 1 :]
    for b in range(1, kw):  # the blocks b > b' are the transposes of those b' < b
        g[:, :, b, :, :, :b] = g[:, :, :b, :, :, b].transpose(3, 4, 0, 1, 2)
    return g.reshape(n, n)


def _along_runs(
    sums: Sums,
    x: np.ndarray,
    ys: np.ndarray,
    rows: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    kh: int,
    kw: int,
) -> None:
    """Add the first block row and the ends of the runs (rows, [starts, ends))."""
    ck = x.shape[2] * kh
    n = ck * kw
    sample_rows, sample_cols = samples(rows, starts, ends)
    for s0, s1 in _spans(len(sample_rows), n):
        r, q = sample_rows[s0:s1], sample_cols[s0:s1]
        v = windows(x, r, q, kh, kw)
        u = np.empty((s1 - s0, ck + 1 + ys.shape[2]))
        u[:, :ck] = v.reshape(-1, ck, kw)[:, :, 0]
        u[:, ck] = 1.0
        u[:, ck + 1 :] = ys[r, q]
        sums.head += u.T @ v
        sums.tail += u[:, ck:].T @ u[:, ck:]
    for s0, s1 in _spans(len(rows), ck * (kw - 1)):
        e = windows(x, rows[s0:s1], ends[s0:s1], kh, kw - 1)
        s = windows(x, rows[s0:s1], starts[s0:s1], kh, kw - 1)
        sums.ends += e.T @ e
        sums.ends -= s.T @ s


def add_masked(
    sums: Sums,
    x: np.ndarray,
    ys: np.ndarray,
    where: np.ndarray,
    kh: int,
    kw: int,
    tick: Meter | None = None,
) -> None:
    """Add Σ u uᵀ of u = (v, 1, y_0 … y_(m−1)) over the samples ``where`` (Ho × Wo) marks.

    ``x`` (H, W, C) the planes (any float dtype; summed in float64), ``ys`` (Ho, Wo, m) the
    targets (m may be 0). Runs of at least :func:`min_run` samples are summed from their first
    block row and their ends, the other samples by their products (the costlier part, of which
    ``tick`` is told the fraction done now and then).
    """
    rows, starts, ends = runs(where)
    shortest = min_run(kw)
    long = (ends - starts >= shortest) if shortest is not None else np.zeros(len(rows), bool)
    if long.any():
        _along_runs(sums, x, ys, rows[long], starts[long], ends[long], kh, kw)
    if not long.all():
        rest = where.copy()
        rest[samples(rows[long], starts[long], ends[long])] = False
        r, q = np.nonzero(rest)
        _plain(sums, x, ys, r, q, kh, kw, tick)


def masked_gram(x: np.ndarray, ys: np.ndarray, where: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Σ u uᵀ over the samples ``where`` marks (see :func:`add_masked`)."""
    sums = Sums.zeros(x.shape[2], kh, kw, ys.shape[2])
    add_masked(sums, x, ys, where, kh, kw)
    return sums.finish(x.shape[2], kh, kw)
