"""A layer, out[o] = Σ_i corr(x[i], K[o, i]) + b[o], by direct sums of taps.

The input arrives as (H, W·C_in) rows, channels interleaved; the output is (Ho, Wo·C_out). Each
thread keeps a ring of the kh extended rows its current output row reads, one per input
channel and kernel row, de-interleaved (so a tap is a contiguous slice, which numba vectorises)
and converted to the float type of the computation; moving down one row fills one new ring
row per channel. Every output channel of a row is summed from the same ring rows, eight taps
at a time (``rows.taps8``), then written with its bias into the interleaved output row.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import leaf, parallel
from convtool._jit.borders import map_index
from convtool._jit.rows import taps8


@leaf
def _fill_ring(src, e, h, channels, kh, mode, cval, cmap, slot, ring):
    """Extended row ``e`` of every input channel into ring rows ``i·kh + slot``."""
    sr = map_index(e, h, mode)
    for q in range(cmap.shape[0]):
        m = cmap[q]
        for i in range(channels):
            if sr < 0 or m < 0:
                ring[i * kh + slot, q] = cval
            else:
                ring[i * kh + slot, q] = src[sr, m * channels + i]


@leaf
def layer_rows(src, geometry, border, taps, outputs, r0, r1, o0, o1, out):
    """Output rows [r0, r1), output channels [o0, o1) of the layer (see above)."""
    if r0 >= r1 or o0 >= o1:
        return
    channels, kh, _, ph, _ = geometry
    mode, cval = border
    h = src.shape[0]
    wo = out.shape[1] // outputs
    ring = np.empty((channels * kh, taps.cmap.shape[0]), taps.tw.dtype)
    sel = np.empty(channels * kh, np.int64)
    acc = np.empty(wo, taps.tw.dtype)
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
            s0 = taps.starts[o]
            for k in range(s0, taps.starts[o + 1], 8):
                taps8(acc, k == s0, ring, sel, taps.tj, taps.tb, 0, taps.tw, k, wo)
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
