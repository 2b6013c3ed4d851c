"""Separable correlation: rows by one factor, then columns by the other, fused in one pass."""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import by_output, by_source, leaf, parallel, serial
from convtool._jit.borders import fill_strip, map_index
from convtool._jit.chunks import claim
from convtool._jit.integer import output_shape, to_integer
from convtool._jit.rows import fill, taps8, taps8_pair


def _separable_pair(ring, slots, zeros, taps, pair, tmp, output, i):
    """The column pass of ``separable_rows`` for output row i (and i + 1 when ``pair``)."""
    raise NotImplementedError("only called from jitted code")


def _separable_pair_float(ring, slots, zeros, taps, pair, tmp, output, i):
    o1 = output.out[i + 1] if pair else tmp[1]
    _column_pass(ring, slots, zeros, taps, pair, output.out[i], o1)


def _separable_pair_int(ring, slots, zeros, taps, pair, tmp, output, i):
    _column_pass(ring, slots, zeros, taps, pair, tmp[0], tmp[1])
    to_integer(tmp[0], output.bias, output.absolute, output.top, output.iout[i])
    if pair:
        to_integer(tmp[1], output.bias, output.absolute, output.top, output.iout[i + 1])


by_output(_separable_pair, _separable_pair_float, _separable_pair_int)


@serial
def _column_pass(ring, slots, zeros, taps, pair, o0, o1):
    """Rows ``o0`` (and ``o1``) = Σ_a u[a]·ring[slots[a]] (the pair tables, or the single)."""
    n = o0.shape[0]
    if pair:
        vj = taps.vj
        for k in range(0, vj.shape[0], 8):
            taps8_pair(o0, o1, k == 0, ring, slots, vj, zeros, 0, taps.vw, taps.vv, k, n)
    else:
        sj = taps.sj
        for k in range(0, sj.shape[0], 8):
            taps8(o0, k == 0, ring, slots, sj, zeros, 0, taps.sw, k, n)


def _row_pass(src, r, channels, pw, kw, border, x0, x1, e, taps, zeros, row, left, right, whole,
              hrow):  # fmt: skip
    """Source row ``r`` filtered along the row (offsets ``taps.hb``, weights ``taps.hw``) into
    ``hrow``: float samples straight from ``src`` over the interior [x0, x1), from strips
    extended by the border mode over [0, e) and [x1, wo); integer ones through one converted
    strip, ``whole`` (see ``by_source``)."""
    raise NotImplementedError("only called from jitted code")


def _row_pass_in_place(src, r, channels, pw, kw, border, x0, x1, e, taps, zeros, row, left,
                       right, whole, hrow):  # fmt: skip
    mode, cval = border
    hb = taps.hb
    w = taps.hw
    wo = hrow.shape[0] // channels
    row[0] = r
    q = x0 * channels
    if x1 > x0:
        for k in range(0, hb.shape[0], 8):
            taps8(hrow[q:], k == 0, src, row, zeros, hb, q - pw * channels, w, k,
                  (x1 - x0) * channels)  # fmt: skip
    if e > 0:
        fill_strip(src, r, channels, -pw, e - pw + kw - 1, mode, cval, left[0])
        for k in range(0, hb.shape[0], 8):
            taps8(hrow, k == 0, left, zeros, zeros, hb, 0, w, k, e * channels)
    if 0 < x1 < wo:
        q = x1 * channels
        fill_strip(src, r, channels, x1 - pw, wo - pw + kw - 1, mode, cval, right[0])
        for k in range(0, hb.shape[0], 8):
            taps8(hrow[q:], k == 0, right, zeros, zeros, hb, 0, w, k, (wo - x1) * channels)


def _row_pass_converted(src, r, channels, pw, kw, border, x0, x1, e, taps, zeros, row, left,
                        right, whole, hrow):  # fmt: skip
    mode, cval = border
    hb = taps.hb
    wo = hrow.shape[0] // channels
    fill_strip(src, r, channels, -pw, wo - pw + kw - 1, mode, cval, whole[0])
    for k in range(0, hb.shape[0], 8):
        taps8(hrow, k == 0, whole, zeros, zeros, hb, 0, taps.hw, k, wo * channels)


by_source(_row_pass, _row_pass_in_place, _row_pass_converted)


@leaf
def separable_rows(src, geometry, border, taps, r0, r1, output):
    """Output rows [r0, r1) of the separable correlation K = u vᵀ in one pass: rows by v,
    then columns by u, fused; ``correlate_separable`` runs the chunks.

    Each chunk of output rows keeps a ring of kh + 1 source rows already filtered along the row
    (``taps.hb``, ``taps.hw``: element offsets b·C and weights v[b]), so that the intermediate
    image never leaves the cache. Output rows go in pairs, like the direct path's: ring row
    i + a meets u[a] for row i and u[a − 1] for row i + 1 (``taps.vj``, ``vw``, ``vv``: a, and
    those weights); a last single row has ``taps.sj``, ``sw``. A source row outside the image
    in constant mode filters to ``taps.hcval`` = cval·Σv. ``output`` as in ``direct_rows``.
    """
    if r0 >= r1:
        return
    channels, kh, kw, ph, pw = geometry
    mode = border.mode
    dtype = taps.hw.dtype
    h = src.shape[0]
    no = output_shape(output)[1]
    zeros = np.zeros(max(taps.hb.shape[0], taps.vj.shape[0]), np.int64)
    size = kh + 1
    ring = np.empty((size, no), dtype)
    slots = np.empty(size, np.int64)
    tmp = np.empty((2, no), dtype)
    # float rows are filtered from the source itself over the interior [x0, x1) (all taps
    # inside), from strips extended by the border mode over [0, e) and [x1, wo) (_row_pass)
    w = src.shape[1] // channels
    wo = no // channels
    x0 = min(pw, wo)
    x1 = max(x0, min(wo, w - kw + 1 + pw))
    e = x0 if x1 > 0 else wo
    left = np.empty((1, (e + kw - 1) * channels), dtype)
    right = np.empty((1, (wo - x1 + kw - 1) * channels), dtype)
    whole = np.empty((1, (wo + kw - 1) * channels), dtype)
    row = np.zeros(1, np.int64)
    filtered = r0 - ph  # the next source row to filter into the ring
    for i in range(r0, r1, 2):
        pair = i + 1 < r1
        last = i - ph + (kh if pair else kh - 1)
        while filtered <= last:
            r = map_index(filtered, h, mode)
            hrow = ring[(filtered + ph) % size]
            if r < 0:
                fill(hrow, taps.hcval)
            else:
                _row_pass(src, r, channels, pw, kw, border, x0, x1, e, taps, zeros, row, left,
                          right, whole, hrow)  # fmt: skip
            filtered += 1
        for a in range(size):
            slots[a] = (i + a) % size
        _separable_pair(ring, slots, zeros, taps, pair, tmp, output, i)


@parallel
def correlate_separable(src, geometry, border, taps, nchunks, output):
    """``separable_rows`` over ``nchunks`` chunks of an even number of output rows, claimed by
    numba's threads as they become free (see ``correlate_direct``)."""
    ho = output_shape(output)[0]
    step = (ho + nchunks - 1) // nchunks
    step += step % 2
    claimed = np.zeros(1, np.int64)
    for _ in nb.prange(nchunks):  # the first iteration of each thread does its share
        t = claim(claimed)
        while t < nchunks:
            separable_rows(src, geometry, border, taps, t * step, min(ho, t * step + step),
                           output)  # fmt: skip
            t = claim(claimed)
