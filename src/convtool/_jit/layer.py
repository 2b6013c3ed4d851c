"""A layer, out[o] = Σ_i corr(x[i], K[o, i]) + b[o], in one pass over the input.

The input arrives as (H, W·C_in) rows, channels interleaved; the output is (Ho, Wo·C_out). Each
thread keeps a ring of the kh extended rows its current output row reads, one per input
channel and kernel row, de-interleaved (so a tap is a contiguous slice, which numba vectorises)
and converted to the float type of the computation; moving down one row fills one new ring
row per channel. Every output channel of a row is summed from the same ring rows, eight taps
at a time (``rows.taps8``; then four, then one): the direct pairs' taps, then each separable
pair K = u vᵀ as a column pass (u over the ring rows, into a scratch row) and a row pass (v
along it); then the sum is written with its bias into the interleaved output row.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import leaf, parallel
from convtool._jit.borders import CONSTANT, map_index
from convtool._jit.rows import fill, taps8


@leaf
def _fill_ring(src, e, h, channels, kh, mode, cval, cmap, slot, ring):
    """Extended row ``e`` of every input channel into ring rows ``i·kh + slot``: a gather
    through ``cmap`` per channel (branch-free where no column is ``cval``'s)."""
    sr = map_index(e, h, mode)
    n = cmap.shape[0]
    for i in range(channels):
        dst = ring[i * kh + slot]
        if sr < 0:
            for q in range(n):
                dst[q] = cval
        elif mode == CONSTANT:
            row = src[sr]
            for q in range(n):
                m = cmap[q]
                dst[q] = row[m * channels + i] if m >= 0 else cval
        else:
            row = src[sr]
            for q in range(n):
                dst[q] = row[cmap[q] * channels + i]


@leaf
def _taps4(o, first, rows, sel, tj, tb, w, k, n):
    """``rows.taps8`` for the four taps k .. k + 3."""
    s0 = rows[sel[tj[k]]][tb[k] : tb[k] + n]
    s1 = rows[sel[tj[k + 1]]][tb[k + 1] : tb[k + 1] + n]
    s2 = rows[sel[tj[k + 2]]][tb[k + 2] : tb[k + 2] + n]
    s3 = rows[sel[tj[k + 3]]][tb[k + 3] : tb[k + 3] + n]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    if first:
        for q in range(n):
            o[q] = (w0 * s0[q] + w1 * s1[q]) + (w2 * s2[q] + w3 * s3[q])
    else:
        for q in range(n):
            o[q] += (w0 * s0[q] + w1 * s1[q]) + (w2 * s2[q] + w3 * s3[q])


@leaf
def _tap(o, first, rows, sel, tj, tb, w, k, n):
    """``rows.taps8`` for the one tap k."""
    s0 = rows[sel[tj[k]]][tb[k] : tb[k] + n]
    w0 = w[k]
    if first:
        for q in range(n):
            o[q] = w0 * s0[q]
    else:
        for q in range(n):
            o[q] += w0 * s0[q]


@leaf
def _taps(o, first, rows, sel, tj, tb, w, k0, k1, n):
    """``o[:n]`` = (or +=) the taps k0 .. k1, eight at a time, then four, then one by one."""
    k = k0
    while k + 8 <= k1:
        taps8(o, first and k == k0, rows, sel, tj, tb, 0, w, k, n)
        k += 8
    if k + 4 <= k1:
        _taps4(o, first and k == k0, rows, sel, tj, tb, w, k, n)
        k += 4
    while k < k1:
        _tap(o, first and k == k0, rows, sel, tj, tb, w, k, n)
        k += 1


@leaf
def _output_row(acc, ring, sel, column, zero, taps, o, wo):
    """``acc[:wo]`` = output channel o's sum over its direct and separable pairs (no bias)."""
    first = True
    if taps.starts[o + 1] > taps.starts[o]:
        _taps(
            acc, True, ring, sel, taps.tj, taps.tb, taps.tw, taps.starts[o], taps.starts[o + 1], wo
        )
        first = False
    wext = column.shape[1]
    for p in range(taps.pstarts[o], taps.pstarts[o + 1]):
        rows = taps.prows[taps.pin[p]]
        _taps(column[0], True, ring, sel, rows, zero, taps.pu[p], 0, rows.shape[0], wext)
        _taps(acc, first, column, zero, zero, taps.pb, taps.pv[p], 0, taps.pb.shape[0], wo)
        first = False
    if first:
        fill(acc, 0.0)


@leaf
def layer_rows(src, geometry, border, taps, outputs, r0, r1, o0, o1, out):
    """Output rows [r0, r1), output channels [o0, o1) of the layer (see above)."""
    if r0 >= r1 or o0 >= o1:
        return
    channels, kh, _, ph, _ = geometry
    mode, cval = border
    h = src.shape[0]
    wo = out.shape[1] // outputs
    wext = taps.cmap.shape[0]
    dtype = taps.tw.dtype
    ring = np.empty((channels * kh, wext), dtype)
    column = np.empty((1, wext), dtype)
    zero = np.zeros(max(taps.pb.shape[0], taps.prows.shape[1]), np.int64)
    sel = np.empty(channels * kh, np.int64)
    acc = np.empty(wo, dtype)
    for r in range(r0, r1):
        first = 0 if r == r0 else kh - 1  # the ring holds rows r − ph .. r − ph + kh − 2
        for a in range(first, kh):
            slot = (r + a) % kh
            _fill_ring(src, r - ph + a, h, channels, kh, mode, cval, taps.cmap, slot, ring)
        for i in range(channels):
            for a in range(kh):
                sel[i * kh + a] = i * kh + (r + a) % kh
        row = out[r]
        for o in range(o0, o1):
            _output_row(acc, ring, sel, column, zero, taps, o, wo)
            b = taps.bias[o]
            for x in range(wo):
                row[x * outputs + o] = acc[x] + b


@parallel
def correlate_layer(src, geometry, border, taps, outputs, nchunks, ngroups, out):
    """``layer_rows`` over ``nchunks`` bands of rows times ``ngroups`` groups of output
    channels, on numba's threads (groups only when there are too few rows to share out)."""
    ho = out.shape[0]
    step = (ho + nchunks - 1) // nchunks
    per = (outputs + ngroups - 1) // ngroups
    for t in nb.prange(nchunks * ngroups):
        r0 = (t // ngroups) * step
        o0 = (t % ngroups) * per
        layer_rows(
            src, geometry, border, taps, outputs, r0, min(ho, r0 + step), o0,
            min(outputs, o0 + per), out,
        )  # fmt: skip
