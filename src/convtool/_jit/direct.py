"""Direct correlation: sums of taps over rows of the source and short extended strips.

Output row i, pixel x, channel c reads X̃[i + a − ph, x + b − pw] for every tap (a, b): same-size
correlation has ph, pw = kh//2, kw//2, valid correlation ph = pw = 0 and a smaller output.
Output columns whose taps all fall inside the row (the interior) read slices of the source rows
themselves, ``src[r, at + b·C : at + b·C + m]``, r chosen by ``map_index`` for rows above and
below the image; the few columns at the left and right edges read short "strips" of the
extended rows, built per output row (and so does the whole width of the rows that constant
mode extends with cval rows). Nothing is ever padded whole. ``direct_rows`` does one chunk of
output rows; ``correlate_direct`` runs the chunks on numba's threads.

Rows are done in pairs: every source row is loaded once for both outputs (it meets K[a] for
the upper row and K[a − 1] for the lower one), which halves the loads per multiply-add; eight
taps are summed before an output row is loaded and stored again. The innermost loops
(``taps8*``, ``_k3x3*``) are compiled on their own (``leaf``): inlined into the loop over rows
they lost their registers. A 3×3 kernel is written out in full, both rows of a pair in one
pass (faster than its two groups of taps; a 5×5 written out was slower than its four groups,
and is not).

Tap tables (built by ``convtool.core.paths``): a pair of output rows reads source rows
j = 0..kh, tap t being row ``tj[t]`` at element offset ``tb[t]`` (= b·C) with weight ``tw[t]``
= K[j, b] for the upper row and ``tv[t]`` = K[j − 1, b] for the lower one (0 outside the
kernel); a single row has (``sj``, ``sb``, ``sw``). Tables are padded to a multiple of 8 taps
with zero weights. In the leaves, ``rows[sel[j]]`` is source row j and ``at`` the element where
the segment starts.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import by_kind, by_output, leaf, parallel
from convtool._jit.borders import CONSTANT, fill_strip, map_index
from convtool._jit.chunks import claim
from convtool._jit.integer import output_shape, to_integer
from convtool._jit.rows import taps8, taps8_pair


@leaf
def _k3x3(o, rows, sel, at, c, k, n):
    """``o[:n]`` = the 3×3 kernel ``k`` over rows ``sel[0..2]``, channel stride ``c``."""
    r0 = rows[sel[0]]
    r1 = rows[sel[1]]
    r2 = rows[sel[2]]
    a0, a1, a2 = r0[at : at + n], r0[at + c : at + c + n], r0[at + 2 * c : at + 2 * c + n]
    b0, b1, b2 = r1[at : at + n], r1[at + c : at + c + n], r1[at + 2 * c : at + 2 * c + n]
    c0, c1, c2 = r2[at : at + n], r2[at + c : at + c + n], r2[at + 2 * c : at + 2 * c + n]
    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
    for q in range(n):
        o[q] = (
            (k00 * a0[q] + k01 * a1[q] + k02 * a2[q])
            + (k10 * b0[q] + k11 * b1[q] + k12 * b2[q])
            + (k20 * c0[q] + k21 * c1[q] + k22 * c2[q])
        )


@leaf
def _k3x3_pair(o0, o1, rows, sel, at, c, k, n):
    """Rows ``o0`` (from source rows ``sel[0..2]``) and ``o1`` (``sel[1..3]``) of a 3×3 kernel."""
    r0 = rows[sel[0]]
    r1 = rows[sel[1]]
    r2 = rows[sel[2]]
    r3 = rows[sel[3]]
    a0, a1, a2 = r0[at : at + n], r0[at + c : at + c + n], r0[at + 2 * c : at + 2 * c + n]
    b0, b1, b2 = r1[at : at + n], r1[at + c : at + c + n], r1[at + 2 * c : at + 2 * c + n]
    c0, c1, c2 = r2[at : at + n], r2[at + c : at + c + n], r2[at + 2 * c : at + 2 * c + n]
    d0, d1, d2 = r3[at : at + n], r3[at + c : at + c + n], r3[at + 2 * c : at + 2 * c + n]
    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
    for q in range(n):
        x0, x1, x2 = b0[q], b1[q], b2[q]
        y0, y1, y2 = c0[q], c1[q], c2[q]
        o0[q] = (k00 * a0[q] + k01 * a1[q] + k02 * a2[q]) + (
            (k10 * x0 + k11 * x1 + k12 * x2) + (k20 * y0 + k21 * y1 + k22 * y2)
        )
        o1[q] = ((k00 * x0 + k01 * x1 + k02 * x2) + (k10 * y0 + k11 * y1 + k12 * y2)) + (
            k20 * d0[q] + k21 * d1[q] + k22 * d2[q]
        )


@leaf
def _k3x3_pair_int(i0, i1, rows, sel, at, c, k, bias, absolute, top, n):
    """``_k3x3_pair`` with the conversion of ``to_integer`` fused into the write: integer rows
    ``i0``, ``i1`` (faster than the float rows converted afterwards)."""
    r0 = rows[sel[0]]
    r1 = rows[sel[1]]
    r2 = rows[sel[2]]
    r3 = rows[sel[3]]
    a0, a1, a2 = r0[at : at + n], r0[at + c : at + c + n], r0[at + 2 * c : at + 2 * c + n]
    b0, b1, b2 = r1[at : at + n], r1[at + c : at + c + n], r1[at + 2 * c : at + 2 * c + n]
    c0, c1, c2 = r2[at : at + n], r2[at + c : at + c + n], r2[at + 2 * c : at + 2 * c + n]
    d0, d1, d2 = r3[at : at + n], r3[at + c : at + c + n], r3[at + 2 * c : at + 2 * c + n]
    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
    zero = top - top
    for q in range(n):
        x0, x1, x2 = b0[q], b1[q], b2[q]
        y0, y1, y2 = c0[q], c1[q], c2[q]
        v0 = (k00 * a0[q] + k01 * a1[q] + k02 * a2[q]) + (
            (k10 * x0 + k11 * x1 + k12 * x2) + (k20 * y0 + k21 * y1 + k22 * y2)
        )
        v1 = ((k00 * x0 + k01 * x1 + k02 * x2) + (k10 * y0 + k11 * y1 + k12 * y2)) + (
            k20 * d0[q] + k21 * d1[q] + k22 * d2[q]
        )
        v0 += bias
        v1 += bias
        if absolute:
            v0 = abs(v0)
            v1 = abs(v1)
        i0[q] = np.rint(min(max(v0, zero), top))
        i1[q] = np.rint(min(max(v1, zero), top))


def _segment(rows, sel, at, c, kind, taps, pair, o0, o1, m):
    """``o0[:m]`` (and ``o1[:m]`` when ``pair``): output rows i (and i + 1) from source rows
    ``rows[sel[j]]``, read from element ``at`` (``c`` channels), by ``taps`` (a
    ``bundles.DirectTaps``): its tap tables (``kind`` ()), or its 3×3 kernel written out
    (``kind`` (0,), see ``by_kind``)."""
    raise NotImplementedError("only called from jitted code")


def _segment_taps(rows, sel, at, c, kind, taps, pair, o0, o1, m):
    if pair:
        for k in range(0, taps.tj.shape[0], 8):
            taps8_pair(o0, o1, k == 0, rows, sel, taps.tj, taps.tb, at, taps.tw, taps.tv, k, m)
    else:
        for k in range(0, taps.sj.shape[0], 8):
            taps8(o0, k == 0, rows, sel, taps.sj, taps.sb, at, taps.sw, k, m)


def _segment_3x3(rows, sel, at, c, kind, taps, pair, o0, o1, m):
    if pair:
        _k3x3_pair(o0, o1, rows, sel, at, c, taps.kern, m)
    else:
        _k3x3(o0, rows, sel, at, c, taps.kern, m)


by_kind(_segment, (_segment_taps, _segment_3x3))


def _segment_int(rows, sel, at, c, kind, taps, pair, o0, o1, i0, i1, output, m):
    """``_segment`` into integer rows ``i0[:m]`` (and ``i1[:m]``) through ``to_integer``, the
    float rows ``o0``, ``o1`` serving as scratch (the written-out 3×3 needs none)."""
    raise NotImplementedError("only called from jitted code")


def _segment_int_taps(rows, sel, at, c, kind, taps, pair, o0, o1, i0, i1, output, m):
    _segment(rows, sel, at, c, kind, taps, pair, o0, o1, m)
    to_integer(o0[:m], output.bias, output.absolute, output.top, i0[:m])
    if pair:
        to_integer(o1[:m], output.bias, output.absolute, output.top, i1[:m])


def _segment_int_3x3(rows, sel, at, c, kind, taps, pair, o0, o1, i0, i1, output, m):
    if pair:
        _k3x3_pair_int(
            i0, i1, rows, sel, at, c, taps.kern, output.bias, output.absolute, output.top, m
        )
    else:
        _k3x3(o0, rows, sel, at, c, taps.kern, m)
        to_integer(o0[:m], output.bias, output.absolute, output.top, i0[:m])


by_kind(_segment_int, (_segment_int_taps, _segment_int_3x3))


def _direct_pair(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, taps, pair, tmp, output, i
):
    """Output row i (and i + 1 when ``pair``) of ``direct_rows``: the interior [a, b) from the
    source rows, the left strip [0, e) and the right one [b, wo) (when 0 < b < wo)."""
    raise NotImplementedError("only called from jitted code")


def _direct_pair_float(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, taps, pair, tmp, output, i
):
    o0 = output.out[i]
    o1 = output.out[i + 1] if pair else tmp[1]
    if b > a:
        q = a * channels
        at = q - pw * channels
        _segment(src, sel, at, channels, kind, taps, pair, o0[q:], o1[q:], (b - a) * channels)
    if e > 0:
        _segment(left, ident, 0, channels, kind, taps, pair, o0, o1, e * channels)
    if 0 < b < wo:
        q = b * channels
        _segment(right, ident, 0, channels, kind, taps, pair, o0[q:], o1[q:], (wo - b) * channels)


def _direct_pair_int(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, taps, pair, tmp, output, i
):
    i0 = output.iout[i]
    i1 = output.iout[i + 1] if pair else output.iout[i]
    t0 = tmp[0]
    t1 = tmp[1]
    if b > a:
        q = a * channels
        at = q - pw * channels
        _segment_int(src, sel, at, channels, kind, taps, pair, t0[q:], t1[q:], i0[q:], i1[q:],
                     output, (b - a) * channels)  # fmt: skip
    if e > 0:
        _segment_int(left, ident, 0, channels, kind, taps, pair, t0, t1, i0, i1, output,
                     e * channels)  # fmt: skip
    if 0 < b < wo:
        q = b * channels
        _segment_int(right, ident, 0, channels, kind, taps, pair, t0[q:], t1[q:], i0[q:], i1[q:],
                     output, (wo - b) * channels)  # fmt: skip


by_output(_direct_pair, _direct_pair_float, _direct_pair_int)


@leaf
def direct_rows(src, geometry, border, kind, taps, r0, r1, output):
    """Output rows [r0, r1) of the direct correlation of ``src`` (H, W·C) into ``output``
    (Ho, Wo·C), two at a time (one at a time for a one-row kernel); see above.
    ``correlate_direct`` runs chunks of an even number of rows on numba's threads.

    ``geometry``, ``border``, ``taps`` and ``output`` are the ``bundles`` of those names (``kind``
    as in ``_segment``); the
    kernel ``taps.kern`` has the float type of the computation. Integer output: ``output.out``
    is None and ``output.iout`` (uint8 or uint16) gets the rows through ``to_integer``; float
    output: ``output.iout`` is None (numba then compiles only the branches each needs).
    """
    if r0 >= r1:
        return
    channels, kh, kw, ph, pw = geometry
    mode, cval = border
    dtype = taps.kern.dtype
    h = src.shape[0]
    w = src.shape[1] // channels
    no = output_shape(output)[1]
    wo = no // channels
    x0 = min(pw, wo)  # interior columns [x0, x1)
    x1 = max(x0, min(wo, w - kw + 1 + pw))
    nr = wo - x1 + kw - 1
    sel = np.empty(kh + 1, np.int64)
    ident = np.arange(kh + 1)
    # strips: the left edge, the right edge, or (constant mode, rows of cval) the whole width
    left = np.empty((kh + 1, ((wo if mode == CONSTANT else x0) + kw - 1) * channels), dtype)
    right = np.empty((kh + 1, nr * channels), dtype)
    tmp = np.empty((2, no), dtype)
    step = 2 if kh > 1 else 1  # a one-row kernel: rows of a pair share no source row
    for i in range(r0, r1, step):
        pair = kh > 1 and i + 1 < r1
        rows = kh + 1 if pair else kh
        inside = True
        for j in range(rows):
            sel[j] = map_index(i - ph + j, h, mode)
            inside = inside and sel[j] >= 0
        a = x0 if inside else 0  # the interior, unless constant mode reads a cval row
        b = x1 if inside else 0
        e = a if b > 0 else wo  # the left strip covers [0, e), the right one [b, wo)
        if e > 0:
            for j in range(rows):
                fill_strip(src, sel[j], channels, -pw, e - pw + kw - 1, mode, cval, left[j])
        if b > 0 and b < wo:
            for j in range(rows):
                fill_strip(src, sel[j], channels, b - pw, b - pw + nr, mode, cval, right[j])
        _direct_pair(
            src,
            sel,
            left,
            right,
            ident,
            pw,
            a,
            b,
            e,
            wo,
            channels,
            kind,
            taps,
            pair,
            tmp,
            output,
            i,
        )


@parallel
def correlate_direct(src, geometry, border, kind, taps, nchunks, output):
    """``direct_rows`` over ``nchunks`` chunks of an even number of output rows, claimed by
    numba's threads as they become free (``chunks``; its OpenMP-style workers scale better
    than a pool of Python threads running the chunks, whose second thread starts slower)."""
    ho = output_shape(output)[0]
    step = (ho + nchunks - 1) // nchunks
    step += step % 2
    claimed = np.zeros(1, np.int64)
    for _ in nb.prange(nchunks):  # the first iteration of each thread does its share
        t = claim(claimed)
        while t < nchunks:
            r0 = t * step
            direct_rows(src, geometry, border, kind, taps, r0, min(ho, r0 + step), output)
            t = claim(claimed)
