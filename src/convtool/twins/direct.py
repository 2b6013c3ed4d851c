"""numpy twins of the jitted direct and separable paths and of the PNG row filter.

A twin takes the arguments of its jitted namesake in ``convtool._jit`` and computes the same
result bit for bit: the same taps in the same groups and sums, each operation in the same float
type (numba's promotion of a weight times a sample, which is not always numpy's). It runs while
the compiled core is not in numba's cache yet, so that the first run of a command writes the
same bytes as every later one without waiting for numba to compile; the jitted code is compiled
without fastmath's reassociation and contraction so that its sums are exactly the ones here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

REFLECT, MIRROR, NEAREST, WRAP, CONSTANT = 0, 1, 2, 3, 4

BAND = 32
"""Output rows a twin computes at a time: the gathered rows of a band stay in the cache."""


def border_index(positions: np.ndarray, n: int, mode: int) -> np.ndarray:
    """The index into [0, n) that each position of a line extended by border ``mode`` reads;
    −1 means cval. The vector form of ``_jit.map_index`` (tested against it), and the one
    owner of the border rules in numpy."""
    x = np.asarray(positions, dtype=np.int64)
    inside = (x >= 0) & (x < n)
    if mode == REFLECT:
        p = 2 * n
        y = x % p
        y = np.where(y >= n, p - 1 - y, y)
    elif mode == MIRROR:
        if n == 1:
            y = np.zeros_like(x)
        else:
            p = 2 * n - 2
            y = x % p
            y = np.where(y >= n, p - y, y)
    elif mode == NEAREST:
        y = np.clip(x, 0, n - 1)
    elif mode == WRAP:
        y = x % n
    else:
        y = np.full_like(x, -1)
    return np.where(inside, x, y)


def extend_index(n: int, start: int, count: int, mode: int) -> np.ndarray:
    """``border_index`` of the positions ``start .. start + count − 1``."""
    return border_index(np.arange(start, start + count, dtype=np.int64), n, mode)


def _product_type(sample: np.dtype, weight: np.dtype) -> type:
    """numba's type of a weight times a sample read from the image: its own promotion rules,
    which make float32 × uint16 a float64 (numpy's would keep float32)."""
    if weight == np.float64 or sample == np.float64 or sample == np.uint16:
        return np.float64
    return np.float32


def _gather(
    src: np.ndarray, rows: np.ndarray, cols: np.ndarray, channels: int, cval: object, dtype: type
) -> np.ndarray:
    """Rows ``rows`` and pixels ``cols`` of ``src`` (H, W·C) in ``dtype``; −1 gives cval."""
    elements = (np.maximum(cols, 0)[:, None] * channels + np.arange(channels)).ravel()
    block = src[np.maximum(rows, 0)][:, elements].astype(dtype)
    block[rows < 0] = cval
    block[:, np.repeat(cols < 0, channels)] = cval
    return block


def _add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """a + b into a's memory; None stands for a sum of zero products (see ``_groups``)."""
    if a is None:
        return b
    if b is not None:
        a += b
    return a


def _groups(
    view: Callable[[int, int], np.ndarray],
    taps: tuple[np.ndarray, np.ndarray, np.ndarray],
    wide: type,
    dtype: type,
    skip_zeros: bool,
    signed_zeros: bool = False,
) -> np.ndarray:
    """Σ weight · view(row, offset) over the taps as ``_jit._taps8`` sums them: groups of eight
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
        g = _add(_add(_add(p[0], p[1]), _add(p[2], p[3])), _add(_add(p[4], p[5]), _add(p[6], p[7])))
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
        _zero_signs(acc, terms, wide)
    return acc


def _zero_signs(
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


def _k3x3(
    view: Callable[[int, int], np.ndarray],
    k: np.ndarray,
    wide: type,
    tree: str,
    skip_zeros: bool,
    signed_zeros: bool = False,
) -> np.ndarray:
    """The written-out 3×3 of ``_jit._k3x3*``: rows R_a = (k[a,0]·x0 + k[a,1]·x1) + k[a,2]·x2,
    then R0 + (R1 + R2) (``tree`` "right": the upper row of a pair) or (R0 + R1) + R2."""

    def p(a: int, b: int) -> np.ndarray | None:
        if skip_zeros and k[a, b] == 0:
            return None
        return np.multiply(view(a, b), wide(k[a, b]), dtype=wide)

    r = [_add(_add(p(a, 0), p(a, 1)), p(a, 2)) for a in range(3)]
    total = _add(r[0], _add(r[1], r[2])) if tree == "right" else _add(_add(r[0], r[1]), r[2])
    total = np.zeros(view(0, 0).shape, wide) if total is None else total
    if skip_zeros and signed_zeros:
        terms = [(partial(view, a, b), k[a, b]) for a in range(3) for b in range(3)]
        _zero_signs(total, terms, wide)
    return total


def _to_integer(acc: np.ndarray, bias: Any, absolute: bool, top: Any) -> np.ndarray:
    """``_jit._to_integer`` in the float type of ``acc`` (``bias``, ``top`` of that type)."""
    t = acc + bias
    t = np.abs(t) if absolute else np.maximum(t, t.dtype.type(0))
    return np.rint(np.minimum(t, top))


def _may_skip_zeros(src: np.ndarray) -> bool:
    """Whether zero weights may be left out: every sample finite (0·inf is NaN)."""
    return src.dtype.kind in "ui" or bool(np.isfinite(src).all())


def _run_bands(ho: int, work: Callable[[int, int], None], band: int = BAND) -> None:
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


def correlate_direct(
    src, channels, ph, pw, mode, cval, kind, kern, tj, tb, tw, tv, sj, sb, sw, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """The twin of ``_jit.correlate_direct`` (``nchunks`` does not change the result)."""
    target = out if out is not None else iout
    ho, no = target.shape
    h, w = src.shape[0], src.shape[1] // channels
    kh, kw = kern.shape
    wo = no // channels
    dtype = kern.dtype.type
    wide = _product_type(src.dtype, kern.dtype)
    x0 = min(pw, wo)
    x1 = max(x0, min(wo, w - kw + 1 + pw))
    cols = extend_index(w, -pw, wo + kw - 1, mode)
    three = len(kind) == 1
    skip_zeros = _may_skip_zeros(src)

    def write(rows: np.ndarray, values: np.ndarray, q0: int, q1: int, converted: bool) -> None:
        if iout is None:
            out[rows, q0:q1] = values
        elif converted:
            iout[rows, q0:q1] = values
        else:
            iout[rows, q0:q1] = _to_integer(values.astype(dtype), bias, absolute, top)

    def segment(block, j0s, role, rows, q0, q1, prec):
        """Output rows ``rows``, elements [q0, q1), from ``block`` rows ``j0s`` on."""
        n = q1 - q0
        if n <= 0 or len(rows) == 0:
            return
        shift = 1 if (three and role == "lower") else 0
        scale = channels if three else 1

        first, step = int(j0s[0]), int(j0s[1] - j0s[0]) if len(j0s) > 1 else 1
        regular = bool(np.all(np.diff(j0s) == step)) and step > 0

        def view(j: int, off: int) -> np.ndarray:
            q = q0 + off * scale
            if regular:
                r = first + j + shift
                return block[r : r + step * (len(j0s) - 1) + 1 : step, q : q + n]
            return block[j0s + j + shift, q : q + n]

        if three:
            tree = "right" if role == "upper" else "left"
            signed = iout is None and prec is dtype
            v = _k3x3(view, kern, prec, tree, skip_zeros and (signed or iout is not None), signed)
            if iout is not None and role != "single":
                # a pair is converted straight from its sums (``_k3x3_pair_int``)
                write(rows, _to_integer(v, prec(bias), absolute, prec(top)), q0, q1, True)
            else:
                write(rows, v.astype(dtype), q0, q1, False)
            return
        taps = (sj, sb, sw) if role == "single" else (tj, tb, tw if role == "upper" else tv)
        signed = iout is None and prec is dtype
        skip = skip_zeros and (signed or iout is not None)
        write(rows, _groups(view, taps, prec, dtype, skip, signed), q0, q1, False)

    def work(r0: int, r1: int) -> None:
        rows = extend_index(h, r0 - ph, r1 - r0 + kh + 1, mode)
        block = _gather(src, rows, cols, channels, cval, dtype)
        if kh > 1:  # rows in pairs, as the jitted loop does them; a last odd row alone
            starts = np.arange(r0, r1, 2)
            paired = starts + 1 < ho
            roles = [("upper", starts[paired], 0), ("lower", starts[paired], 1)]
            roles.append(("single", starts[~paired], 0))
        else:
            roles = [("single", np.arange(r0, r1), 0)]
        for role, first, down in roles:
            used = kh if role == "single" else kh + 1
            span = (first - r0)[:, None] + np.arange(used)
            inside = np.all(rows[span] >= 0, axis=1)
            for flag in (True, False):
                chosen = first[inside == flag]
                j0s = chosen - r0
                a, b = (x0, x1) if flag else (0, 0)
                e = a if b > 0 else wo
                if b > a:
                    segment(block, j0s, role, chosen + down, a * channels, b * channels, wide)
                segment(block, j0s, role, chosen + down, 0, e * channels, dtype)
                if 0 < b < wo:
                    segment(block, j0s, role, chosen + down, b * channels, wo * channels, dtype)

    _run_bands(ho, work)


def correlate_separable(
    src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """The twin of ``_jit.correlate_separable``: every row filtered along the row, then the
    columns, all in the float type of the weights."""
    target = out if out is not None else iout
    ho, no = target.shape
    h, w = src.shape[0], src.shape[1] // channels
    wo = no // channels
    dtype = hw.dtype.type
    cols = extend_index(w, -pw, wo + kw - 1, mode)
    zeros = np.zeros(len(hb), np.int64)
    skip = _may_skip_zeros(src)
    signed = iout is None  # float output: zero signs matter
    rows = extend_index(h, -ph, ho + kh + 1, mode)  # every source row the output reads
    filtered = np.empty((len(rows), no), dtype)

    def along_rows(r0: int, r1: int) -> None:
        block = _gather(src, rows[r0:r1], cols, channels, cval, dtype)
        filtered[r0:r1] = _groups(
            lambda j, off: block[:, off : off + no], (zeros, hb, hw), dtype, dtype, skip, signed
        )
        filtered[r0:r1][rows[r0:r1] < 0] = hcval

    def along_columns(r0: int, r1: int) -> None:
        starts = np.arange(r0, r1, 2)
        paired = starts + 1 < ho
        count = int(paired.sum())
        roles = [(r0, r0, count, vj, vw), (r0 + 1, r0, count, vj, vv)]
        if not paired.all():  # the last, odd row alone
            roles.append((ho - 1, ho - 1, 1, sj, sw))
        for first, j0, n, taps, weights in roles:
            if n == 0:
                continue

            def view(j: int, off: int, j0: int = j0, n: int = n) -> np.ndarray:
                return filtered[j0 + j : j0 + j + 2 * (n - 1) + 1 : 2]

            offsets = np.zeros(len(taps), np.int64)
            acc = _groups(view, (taps, offsets, weights), dtype, dtype, skip, signed)
            rows_out = slice(first, first + 2 * (n - 1) + 1, 2)
            if iout is None:
                out[rows_out] = acc
            else:
                iout[rows_out] = _to_integer(acc, bias, absolute, top)

    _run_bands(len(rows), along_rows)
    _run_bands(ho, along_columns)


def png_filter(src: np.ndarray, r0: int, r1: int, bpp: int, out: np.ndarray) -> None:
    """The twin of ``_jit.png_filter``: rows [r0, r1) of ``src`` filtered into ``out``, each by
    the PNG filter type whose bytes have the least sum of magnitudes as signed bytes. Filtered
    bytes are differences modulo 256, which uint8 arithmetic gives as it wraps."""
    for s in range(r0, r1, 64):
        e = min(r1, s + 64)
        x = src[s:e]
        b = np.zeros_like(x)
        if s > 0:
            b[:] = src[s - 1 : e - 1]
        else:
            b[1:] = src[s : e - 1]
        a = np.zeros_like(x)
        a[:, bpp:] = x[:, :-bpp]
        c = np.zeros_like(b)
        c[:, bpp:] = b[:, :-bpp]
        a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
        pa, pb = np.abs(b16 - c16), np.abs(a16 - c16)
        pc = np.abs(a16 + b16 - 2 * c16)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        average = ((a16 + b16) >> 1).astype(np.uint8)
        filters = [x, x - a, x - b, x - average, x - paeth]
        cost = np.stack(
            [np.abs(f.view(np.int8), dtype=np.int16).sum(axis=1, dtype=np.int64) for f in filters]
        )
        kind = np.argmin(cost, axis=0)  # the first least: ties go to the lower type
        out[s:e, 0] = kind
        for t, f in enumerate(filters):
            chosen = kind == t
            out[s:e, 1:][chosen] = f[chosen]


# --- the FFT path ------------------------------------------------------------------------------
#
# ``_jit._fft_dif`` and ``_fft_dit`` run one butterfly per group of rows, a vector loop along the
# rows; here every group and every plane of a batch at once. numba types ``sign`` (a float64)
# times a float32 as a float64, and so do these sums: the twiddles' sine parts are float64.

FFT_BATCH = 4
"""Pairs of planes a twin transforms at a time."""


def _twiddles(cos: np.ndarray, sin: np.ndarray, s: int, st: int, sign: float):
    """(w1r, w1i, w2r, w2i, w3r, w3i) for butterflies j = 0..s − 1, shaped to broadcast over
    the columns: the cosines in the table's type, the signed sines in float64."""
    j = np.arange(s) * st
    sg = np.float64(sign)
    out = []
    for k in (1, 2, 3):
        out += [cos[k * j][:, None], (sg * sin[k * j])[:, None]]
    return out


def _fft_dif(x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray, sign: float):
    """``_jit._fft_dif`` along axis 1 of (P, n, m) arrays ``x`` (real), ``y`` (imaginary)."""
    n = x.shape[1]
    size = n
    sg = np.float64(sign)
    while size >= 4:
        s = size // 4
        w1r, w1i, w2r, w2i, w3r, w3i = _twiddles(cos, sin, s, n // size, sign)
        shape = (x.shape[0], n // size, 4, s, x.shape[2])
        xr, xi = x.reshape(shape), y.reshape(shape)
        r0, r1, r2, r3 = (xr[:, :, k] for k in range(4))
        i0, i1, i2, i3 = (xi[:, :, k] for k in range(4))
        ar, ai, br, bi = r0 + r2, i0 + i2, r0 - r2, i0 - i2
        cr, ci = r1 + r3, i1 + i3
        er = -sg * (i1 - i3)
        ei = sg * (r1 - r3)
        fr, fi = ar - cr, ai - ci
        gr, gi = br + er, bi + ei
        hr, hi = br - er, bi - ei
        r0[...], i0[...] = ar + cr, ai + ci
        r1[...], i1[...] = fr * w2r - fi * w2i, fr * w2i + fi * w2r
        r2[...], i2[...] = gr * w1r - gi * w1i, gr * w1i + gi * w1r
        r3[...], i3[...] = hr * w3r - hi * w3i, hr * w3i + hi * w3r
        size //= 4
    if size == 2:
        _fft_radix2(x, y)


def _fft_dit(x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray, sign: float):
    """``_jit._fft_dit`` along axis 1 of (P, n, m) arrays."""
    n = x.shape[1]
    s = 1
    while 4 * s <= n:
        s *= 4
    if s < n:
        _fft_radix2(x, y)
        s = 2
    else:
        s = 1
    sg = np.float64(sign)
    while s < n:
        size = 4 * s
        w1r, w1i, w2r, w2i, w3r, w3i = _twiddles(cos, sin, s, n // size, sign)
        shape = (x.shape[0], n // size, 4, s, x.shape[2])
        xr, xi = x.reshape(shape), y.reshape(shape)
        r0, r1, r2, r3 = (xr[:, :, k] for k in range(4))
        i0, i1, i2, i3 = (xi[:, :, k] for k in range(4))
        a1r, a1i = r1 * w2r - i1 * w2i, r1 * w2i + i1 * w2r
        a2r, a2i = r2 * w1r - i2 * w1i, r2 * w1i + i2 * w1r
        a3r, a3i = r3 * w3r - i3 * w3i, r3 * w3i + i3 * w3r
        ur, ui, vr, vi = r0 + a1r, i0 + a1i, r0 - a1r, i0 - a1i
        pr, pi = a2r + a3r, a2i + a3i
        zr = -sg * (a2i - a3i)
        zi = sg * (a2r - a3r)
        r0[...], i0[...] = ur + pr, ui + pi
        r2[...], i2[...] = ur - pr, ui - pi
        r1[...], i1[...] = vr + zr, vi + zi
        r3[...], i3[...] = vr - zr, vi - zi
        s *= 4


def _fft_radix2(x: np.ndarray, y: np.ndarray) -> None:
    """``_jit._fft_radix2``: neighbouring rows, twiddle 1."""
    for z in (x, y):
        a, b = z[:, 0::2], z[:, 1::2]
        t = a.copy()
        a += b
        np.subtract(t, b, out=b)


def _fft_forward(x, y, c0, s0, c1, s1):
    """``_jit._fft_forward`` of (P, n0, n1): the spectrum transposed, (P, n1, n0)."""
    _fft_dif(x, y, c0, s0, -1.0)
    xt, yt = np.ascontiguousarray(x.transpose(0, 2, 1)), np.ascontiguousarray(y.transpose(0, 2, 1))
    _fft_dif(xt, yt, c1, s1, -1.0)
    return xt, yt


def _fft_inverse(xt, yt, c0, s0, c1, s1):
    """``_jit._fft_inverse`` of a spectrum laid out as ``_fft_forward`` leaves it."""
    _fft_dit(xt, yt, c1, s1, 1.0)
    x, y = np.ascontiguousarray(xt.transpose(0, 2, 1)), np.ascontiguousarray(yt.transpose(0, 2, 1))
    _fft_dit(x, y, c0, s0, 1.0)
    return x, y


def _run_of(indices: np.ndarray) -> bool:
    """Whether ``indices`` are consecutive positions inside the image."""
    return bool(indices[0] >= 0 and indices[-1] - indices[0] == len(indices) - 1) and bool(
        np.all(np.diff(indices) == 1)
    )


def fft_kernel_spectrum(kern, c0, s0, c1, s1, scale, kre, kim):
    """The twin of ``_jit.fft_kernel_spectrum``."""
    n0, n1 = c0.shape[0], c1.shape[0]
    x = np.zeros((1, n0, n1), kre.dtype)
    y = np.zeros((1, n0, n1), kre.dtype)
    x[0, : kern.shape[0], : kern.shape[1]] = kern
    xt, yt = _fft_forward(x, y, c0, s0, c1, s1)
    with np.errstate(all="ignore"):
        kre[...] = xt[0] * scale
        kim[...] = yt[0] * -scale


def correlate_fft(
    src, channels, rmap, cmap, cval, kre, kim, c0, s0, c1, s1, t0, t1, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """The twin of ``_jit.correlate_fft``: the same planes, paired the same way, transformed
    in batches."""
    n0, n1 = c0.shape[0], c1.shape[0]
    target = out if out is not None else iout
    ho, no = target.shape
    wo = no // channels
    across = (wo + t1 - 1) // t1
    planes = (ho + t0 - 1) // t0 * across * channels
    pairs = (planes + 1) // 2
    dtype = kre.dtype.type

    def gather(plane: int, dst: np.ndarray) -> None:
        tile, ch = divmod(plane, channels)
        y0, x0 = (tile // across) * t0, (tile % across) * t1
        rows = min(n0, len(rmap) - y0)
        cols = min(n1, len(cmap) - x0)
        r, c = rmap[y0 : y0 + rows], cmap[x0 : x0 + cols]
        if _run_of(r) and _run_of(c):  # a window inside the image: plain slices
            first = int(c[0]) * channels + ch
            dst[:rows, :cols] = src[r[0] : r[0] + rows, first : first + cols * channels : channels]
            return
        window = src[np.maximum(r, 0)][:, np.maximum(c, 0) * channels + ch].astype(dtype)
        window[r < 0] = cval
        window[:, c < 0] = cval
        dst[:rows, :cols] = window

    def scatter(plane: int, acc: np.ndarray) -> None:
        tile, ch = divmod(plane, channels)
        y0, x0 = (tile // across) * t0, (tile % across) * t1
        rows, cols = min(t0, ho - y0), min(t1, wo - x0)
        part = acc[:rows, :cols]
        columns = slice(x0 * channels + ch, (x0 + cols) * channels, channels)
        if iout is None:
            out[y0 : y0 + rows, columns] = part
        else:
            iout[y0 : y0 + rows, columns] = _to_integer(part, bias, absolute, top)

    def work(q0: int, q1: int) -> None:
        count = q1 - q0
        x = np.zeros((count, n0, n1), dtype)
        y = np.zeros((count, n0, n1), dtype)
        for k in range(count):
            p = 2 * (q0 + k)
            gather(p, x[k])
            if p + 1 < planes:
                gather(p + 1, y[k])
        xt, yt = _fft_forward(x, y, c0, s0, c1, s1)
        a, b = xt * kre - yt * kim, xt * kim + yt * kre
        x, y = _fft_inverse(a, b, c0, s0, c1, s1)
        for k in range(count):
            p = 2 * (q0 + k)
            scatter(p, x[k])
            if p + 1 < planes:
                scatter(p + 1, y[k])

    _run_bands(pairs, work, FFT_BATCH)  # read at call time
