"""The Gram matrix of a valid-window fit from FFTs: autocorrelations less thin border strips.

For planes A, B (H × W) and a kh × kw window, the fit's Gram matrix is

    G[p, r] = Σ_(i < Ho, j < Wo) A[i + a, j + b] · B[i + a', j + b'],   p = (a, b), r = (a', b')

with Ho = H − kh + 1, Wo = W − kw + 1. Summed over s = (i + a, j + b) it is the product
A(s)·B(s + δ), δ = r − p, over the rectangle [a, a + Ho) × [b, b + Wo): the whole
cross-correlation of A and B at lag δ (one 2-D FFT gives all (2kh − 1)(2kw − 1) lags) less
the rows above and below the rectangle (fewer than kh of each: 1-D FFTs of those rows), less
the columns left and right of it (likewise), plus the four corners subtracted twice (blocks
under kh × kw, summed directly). That is O(HW log HW + k³(H + W) + k⁴) work, against the
O(HW·k⁴) of summing the products pixel by pixel, and O(k⁴) memory.

``integer=True`` (planes of integers) rounds each FFT sum to the nearest integer, which it is:
the result is then the exact Gram matrix, the same bytes as the pixel-by-pixel sums, while
:func:`integer_exact` holds (the FFT's rounding error stays far below ½).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from convtool.learn.runs import Sums, add_masked
from convtool.learn.work import FFT_LAG_SECONDS, FFT_PIXEL_SECONDS, PATCH_SECONDS

FFT_ERROR = 1e-13
"""A bound on the FFT's rounding error, relative to ‖A‖·‖B‖ (pocketfft is near 1e-15)."""


STRIPS_SHARE = 0.2
"""About the share of :func:`window_gram`'s time spent before the assembly (for progress)."""


def integer_exact(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether rounding the FFT sums of integer planes ``a``, ``b`` gives them exactly."""
    norms = float(np.sqrt(square_sum(a))) * float(np.sqrt(square_sum(b)))
    return norms * FFT_ERROR < 0.25 and norms < 2.0**52


def square_sum(a: np.ndarray) -> float:
    """Σ a² in float64, a plane at a time (no float64 copy of the whole stack)."""
    planes = a.reshape(-1, *a.shape[-2:]) if a.ndim > 2 else a[np.newaxis]
    return float(sum(np.sum(np.square(plane, dtype=np.float64)) for plane in planes))


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` in float64 (numpy's FFTs keep float32 in single precision)."""
    return np.asarray(a, dtype=np.float64)


def _zero_padded(
    b: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], py: int, px: int
) -> np.ndarray:
    """Rows [r0, r1) and columns [c0, c1) of the stack ``b`` with ``py`` rows and ``px`` columns
    of 0 around it, in float64 (the part of the padded stack that is read, not all of it)."""
    (r0, r1), (c0, c1) = rows, cols
    out = np.zeros((b.shape[0], r1 - r0, c1 - c0))
    s0, s1 = max(r0 - py, 0), min(r1 - py, b.shape[1])
    t0, t1 = max(c0 - px, 0), min(c1 - px, b.shape[2])
    if s0 < s1 and t0 < t1:
        out[:, s0 + py - r0 : s1 + py - r0, t0 + px - c0 : t1 + px - c0] = b[:, s0:s1, t0:t1]
    return out


def _fast_len(n: int) -> int:
    """The smallest 2^i·3^j·5^k ≥ n (sizes pocketfft transforms fastest)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _round(x: np.ndarray, integer: bool) -> np.ndarray:
    return np.rint(x) if integer else x


def _lags(a: np.ndarray, b: np.ndarray, kh: int, kw: int, integer: bool) -> np.ndarray:
    """T[dy + kh − 1, dx + kw − 1] = Σ_(channel, s) A(s)·B(s + δ) over every s with both inside."""
    h, w = a.shape[1:]
    shape = (_fast_len(h + kh - 1), _fast_len(w + kw - 1))
    spectrum = np.zeros((shape[0], shape[1] // 2 + 1), dtype=complex)
    for ac, bc in zip(a, b, strict=True):  # a channel at a time bounds the memory
        fa = np.fft.rfft2(_f64(ac), shape)
        spectrum += np.conj(fa) * (fa if bc is ac else np.fft.rfft2(_f64(bc), shape))
    c = np.fft.irfft2(spectrum, shape)
    rows = np.r_[shape[0] - kh + 1 : shape[0], 0:kh]
    cols = np.r_[shape[1] - kw + 1 : shape[1], 0:kw]
    return _round(c[np.ix_(rows, cols)], integer)


def _line_lags(
    a: np.ndarray, b: np.ndarray, lines: np.ndarray, k_across: int, k_along: int, integer: bool
) -> np.ndarray:
    """F[l, dy + k_across − 1, dx + k_along − 1] = Σ_(channel, c) A(ρ, c)·B(ρ + dy, c + dx) for
    the rows ρ = ``lines[l]`` (0 where row ρ + dy is outside)."""
    _, _, w = a.shape
    length = _fast_len(w + k_along - 1)
    # the rows of B with k_across − 1 rows of 0 around that lines + dy reach
    first = int(lines.min()) if len(lines) else 0
    span = (first, (int(lines.max()) if len(lines) else 0) + 2 * k_across - 1)
    pad = _zero_padded(b, span, (0, w), k_across - 1, 0)
    fa = np.conj(np.fft.rfft(_f64(a[:, lines]), length))  # (C, L, f)
    out = np.empty((len(lines), 2 * k_across - 1, 2 * k_along - 1))
    cols = np.r_[length - k_along + 1 : length, 0:k_along]
    fpad = np.fft.rfft(pad, length)  # each row of B once, read by every lag that reaches it
    for dy in range(2 * k_across - 1):  # a loop bounds the memory to one lag of rows
        fb = fpad[:, lines - first + dy]
        c = np.fft.irfft((fa * fb).sum(axis=0), length)
        out[:, dy] = c[:, cols]
    return _round(out, integer)


def _corner(block: np.ndarray, bpad: np.ndarray, iy: int, kw: int) -> np.ndarray:
    """P[ρ, c, dx] = Σ_channel A(ρ, c)·B(ρ + dy, c + dx) over a corner ``block`` of A (0 outside
    B), for the lag row dy = iy − (kh − 1) (``bpad``: the part of B, with kh − 1 rows and kw − 1
    columns of 0 around, that the block's windows reach)."""
    bh, bw = block.shape[1:]
    window = bpad[:, iy : iy + bh]
    view = np.lib.stride_tricks.sliding_window_view(window, bw, axis=2)  # (C, bh, 2kw−1, bw)
    return np.einsum("crxb,crb->rbx", view, block)


def as_stack(x: np.ndarray) -> np.ndarray:
    """(H, W) or (C, H, W) as a (C, H, W) stack of numbers as they are (each transform or
    block takes its float64 copy: none of the whole stack is made)."""
    x = np.asarray(x)
    return x[np.newaxis] if x.ndim == 2 else x


def window_gram(
    a: np.ndarray,
    b: np.ndarray,
    kh: int,
    kw: int,
    *,
    integer: bool = False,
    tick: Callable[[float], None] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """G[p, r] (n × n, n = kh·kw, p = a·kw + b) of the module docstring, summed over channels.

    ``a`` and ``b`` are planes (H, W) or stacks (C, H, W) of the same shape; ``b`` may be ``a``.
    ``tick(fraction)`` is told how much of the work is done, now and then. ``out`` (n × n, a
    view into a larger matrix, say) receives G.

    >>> a = np.arange(12.0).reshape(3, 4)
    >>> g = window_gram(a, a, 2, 2)
    >>> x = np.lib.stride_tricks.sliding_window_view(a, (2, 2)).reshape(-1, 4)
    >>> bool(np.allclose(g, x.T @ x))
    True
    """
    same = b is a
    a = as_stack(a)
    b = a if same else as_stack(b)
    h, w = a.shape[1:]
    ho, wo = h - kh + 1, w - kw + 1
    t = _lags(a, b, kh, kw, integer)
    rt = _line_lags(a, b, np.arange(kh - 1), kh, kw, integer)  # (kh−1, 2kh−1, 2kw−1)
    rb = _line_lags(a, b, np.arange(ho, h), kh, kw, integer)
    at, bt = a.transpose(0, 2, 1), b.transpose(0, 2, 1)
    ct = _line_lags(at, bt, np.arange(kw - 1), kw, kh, integer)  # (kw−1, 2kw−1, 2kh−1)
    cr = _line_lags(at, bt, np.arange(wo, w), kw, kh, integer)
    if tick is not None:
        tick(STRIPS_SHARE)
    # strip sums by the window's place: rows above a (prefix), rows from a + Ho (suffix)
    zero_r = np.zeros((1, 2 * kh - 1, 2 * kw - 1))
    above = np.concatenate([zero_r, np.cumsum(rt, axis=0)])
    below = np.concatenate([np.cumsum(rb[::-1], axis=0)[::-1], zero_r])
    zero_c = np.zeros((1, 2 * kw - 1, 2 * kh - 1))
    leftof = np.concatenate([zero_c, np.cumsum(ct, axis=0)])
    rightof = np.concatenate([np.cumsum(cr[::-1], axis=0)[::-1], zero_c])
    corners = []
    for r0, c0 in ((0, 0), (0, wo), (ho, 0), (ho, wo)):
        block = _f64(a[:, r0 : r0 + kh - 1, c0 : c0 + kw - 1])
        reach = ((r0, r0 + 3 * (kh - 1)), (c0, c0 + 3 * (kw - 1)))
        corners.append((block, _zero_padded(b, *reach, kh - 1, kw - 1)))
    if out is None:
        out = np.empty((kh * kw, kh * kw))
    _assemble(t, above, below, leftof, rightof, corners, kh, kw, tick, out)
    return out


def _corner_sums(
    corners: list[tuple[np.ndarray, np.ndarray]], kh: int, kw: int, iy: int
) -> np.ndarray:
    """Q[a, b, dx] = the four corners' sums of A(s)·B(s + δ), dy = iy − (kh − 1), for the window
    at (a, b): rows above a or from a + Ho, columns left of b or from b + Wo. ``corners``: the
    four (kh − 1) × (kw − 1) blocks of A (top left, top right, bottom left, bottom right) with
    the part of the padded B their windows reach."""
    q = np.zeros((kh, kw, 2 * kw - 1))
    if kh == 1 or kw == 1:
        return q
    flips = ((False, False), (False, True), (True, False), (True, True))
    s = np.zeros((kh, kw, 2 * kw - 1))
    for (block, bpad), (flip_r, flip_c) in zip(corners, flips, strict=True):
        p = _corner(block, bpad, iy, kw)  # (kh−1, kw−1, 2kw−1)
        p = p[:: -1 if flip_r else 1, :: -1 if flip_c else 1]
        # the lags last: both sums run along outer axes, over rows of 2kw − 1 lags at once, as
        # loops of vector additions (the order of np.cumsum's, which goes element by element)
        for r in range(kh - 1):
            np.add(s[r, 1:], p[r], out=s[r + 1, 1:])
        for c in range(1, kw - 1):
            np.add(s[1:, c + 1], s[1:, c], out=s[1:, c + 1])
        # suffix sums: index a counts the rows from a + Ho, the last kh − 1 − a of them
        q += s[:: -1 if flip_r else 1, :: -1 if flip_c else 1]
    return q


def _assemble(
    t: np.ndarray,
    above: np.ndarray,
    below: np.ndarray,
    leftof: np.ndarray,
    rightof: np.ndarray,
    corners: list[tuple[np.ndarray, np.ndarray]],
    kh: int,
    kw: int,
    tick: Callable[[float], None] | None,
    out: np.ndarray,
) -> None:
    """G[(a, b), (a + dy, b + dx)] = T − strips + corners, one lag row dy at a time (the
    corners of each computed there from ``planes``, A and the padded B: O(k³) memory)."""
    out[...] = 0.0
    g = out.reshape(kh, kw, kh, kw)
    assert np.shares_memory(g, out)
    bi = np.arange(kw)[:, None]  # b
    ix = np.arange(kw)[None, :] - bi + kw - 1  # dx + kw − 1 of (b, b')
    for dy in range(-(kh - 1), kh):
        ai = np.arange(max(0, -dy), min(kh, kh - dy))
        iy = dy + kh - 1
        v = (
            t[iy, ix][None]
            - (above[ai, iy] + below[ai, iy])[:, ix]
            - (leftof[:, :, iy] + rightof[:, :, iy])[bi, ix][None]
            + _corner_sums(corners, kh, kw, iy)[ai[:, None, None], bi[None], ix]
        )
        g[ai, :, ai + dy, :] = v
        if tick is not None:
            tick(STRIPS_SHARE + (1 - STRIPS_SHARE) * (iy + 1) / (2 * kh - 1))


def _box_sums(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """S[a·kw + b] = Σ_(channel, i < Ho, j < Wo) X[i + a, j + b]: the sum of each tap's samples."""
    _, h, w = x.shape
    c = np.zeros((h + 1, w + 1))
    c[1:, 1:] = x.sum(axis=0, dtype=np.float64).cumsum(axis=0).cumsum(axis=1)
    ho, wo = h - kh + 1, w - kw + 1
    a = np.arange(kh)[:, None]
    b = np.arange(kw)[None, :]
    return (c[a + ho, b + wo] - c[a, b + wo] - c[a + ho, b] + c[a, b]).ravel()


def _cross(x: np.ndarray, y: np.ndarray, kh: int, kw: int, integer: bool) -> np.ndarray:
    """R[a·kw + b] = Σ_(channel, i, j) X[i + a, j + b]·Y[i, j], Y of the valid size (Xᵀy)."""
    _, h, w = x.shape
    shape = (_fast_len(h), _fast_len(w))
    spectrum = np.zeros((shape[0], shape[1] // 2 + 1), dtype=complex)
    for xc, yc in zip(x, y, strict=True):
        spectrum += np.fft.rfft2(_f64(xc), shape) * np.conj(np.fft.rfft2(_f64(yc), shape))
    return _round(np.fft.irfft2(spectrum, shape)[:kh, :kw], integer).ravel()


def _patches(
    x: np.ndarray,
    y: np.ndarray,
    where: np.ndarray,
    kh: int,
    kw: int,
    out: np.ndarray | None = None,
    sign: float = 1.0,
    tick: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Σ v vᵀ of v = (window, 1, y) over the samples ``where`` (C, Ho, Wo) marks, every channel
    a plane of its own (:mod:`convtool.learn.runs`: long runs from their ends), added to
    ``out`` times ``sign`` (by default to a new matrix of zeros); ``tick`` is told the fraction
    done now and then."""
    sums = Sums.zeros(1, kh, kw, 1, out, sign)
    counts = where.reshape(len(where), -1).sum(axis=1)
    before = np.concatenate([[0], np.cumsum(counts)]) / max(1, int(counts.sum()))
    for c in range(x.shape[0]):
        if counts[c]:
            part = None if tick is None else _part(tick, before[c], before[c + 1])
            add_masked(sums, x[c][..., np.newaxis], y[c][..., np.newaxis], where[c], kh, kw, part)
    return sums.finish(1, kh, kw)


def _part(tick: Callable[[float], None], start: float, end: float) -> Callable[[float], None]:
    """``tick`` moved over [start, end] as a piece of work goes from 0 to 1."""
    return lambda fraction: tick(start + (end - start) * fraction)


def augmented_gram(
    x: np.ndarray,
    y: np.ndarray,
    kept: np.ndarray,
    kh: int,
    kw: int,
    *,
    integer: bool = False,
    tick: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Σ v vᵀ of v = (x_0 … x_{n−1}, 1, y) over the kept valid samples, the layout of
    ``_jit.learn.learn_normal_equations``: from FFTs over every sample, less the samples left
    out (or, when fewer are kept than left out, summed over the kept ones directly).

    ``x`` (C, H, W) the input, ``y`` (C, Ho, Wo) the aligned target, ``kept`` (C, Ho, Wo)
    which samples count. Over integers (``integer``) every sum is exact.
    """
    n = kh * kw
    left = ~kept
    left_out = int(left.sum())
    if left_out > kept.size - left_out:
        return _patches(x, y, kept, kh, kw, tick=tick)
    # the meter's share of each part by the cost model's estimates
    lags = FFT_PIXEL_SECONDS * x.size + FFT_LAG_SECONDS * (2 * kh - 1) * (2 * kw - 1) * n
    share = lags / (lags + PATCH_SECONDS * left_out * (n + 2) ** 2)
    g = np.empty((n + 2, n + 2))
    window_gram(
        x, x, kh, kw, integer=integer, out=g[:n, :n],
        tick=None if tick is None else _part(tick, 0.0, share),
    )  # fmt: skip
    g[:n, n] = g[n, :n] = _box_sums(x, kh, kw)
    g[:n, n + 1] = g[n + 1, :n] = _cross(x, y, kh, kw, integer)
    g[n, n] = y.size
    g[n, n + 1] = g[n + 1, n] = float(y.sum(dtype=np.float64))
    g[n + 1, n + 1] = square_sum(y)
    if left_out:
        _patches(x, y, left, kh, kw, g, -1.0, None if tick is None else _part(tick, share, 1.0))
    return g


def correlated_planes(x: np.ndarray, kernel: np.ndarray) -> Iterator[np.ndarray]:
    """X ⋆ K over the valid windows of each plane of ``x`` (C, H, W) in turn, by FFT: (Ho, Wo)
    arrays (each plane taken in float64 when its turn comes)."""
    kh, kw = kernel.shape
    _, h, w = x.shape
    shape = (_fast_len(h), _fast_len(w))
    spectrum = np.conj(np.fft.rfft2(kernel, shape))
    for plane in x:
        full = np.fft.irfft2(np.fft.rfft2(_f64(plane), shape) * spectrum, shape)
        yield full[: h - kh + 1, : w - kw + 1]


def valid_correlation(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """X ⋆ K over the valid windows of each plane of ``x`` (C, H, W), by FFT: (C, Ho, Wo)."""
    return np.array(list(correlated_planes(x, kernel)))
