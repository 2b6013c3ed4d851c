"""Separable correlation: rows by one factor, then columns by the other, fused in one pass."""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import by_output, by_source, leaf, parallel, serial
from convtool._jit.borders import fill_strip, map_index
from convtool._jit.integer import output_shape, to_integer
from convtool._jit.rows import fill, taps8, taps8_pair


def _separable_pair(ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp, out, iout, i, bias,
                    absolute, top):  # fmt: skip
    """The column pass of ``separable_rows`` for output row i (and i + 1 when ``pair``)."""
    raise NotImplementedError("only called from jitted code")


def _separable_pair_float(ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp, out, iout, i,
                          bias, absolute, top):  # fmt: skip
    _column_pass(
        ring, slots, vj, zeros, vw, vv, sj, sw, pair, out[i], out[i + 1] if pair else tmp[1]
    )


def _separable_pair_int(ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp, out, iout, i, bias,
                        absolute, top):  # fmt: skip
    _column_pass(ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp[0], tmp[1])
    to_integer(tmp[0], bias, absolute, top, iout[i])
    if pair:
        to_integer(tmp[1], bias, absolute, top, iout[i + 1])


by_output(_separable_pair, _separable_pair_float, _separable_pair_int)


@serial
def _column_pass(ring, slots, vj, zeros, vw, vv, sj, sw, pair, o0, o1):
    """Rows ``o0`` (and ``o1``) = Σ_a u[a]·ring[slots[a]] (the pair tables, or the single)."""
    n = o0.shape[0]
    if pair:
        for k in range(0, vj.shape[0], 8):
            taps8_pair(o0, o1, k == 0, ring, slots, vj, zeros, 0, vw, vv, k, n)
    else:
        for k in range(0, sj.shape[0], 8):
            taps8(o0, k == 0, ring, slots, sj, zeros, 0, sw, k, n)


def _row_pass(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row, left, right,
              whole, hrow):  # fmt: skip
    """Source row ``r`` filtered along the row (taps ``hb``, weights ``w``) into ``hrow``: float
    samples straight from ``src`` over the interior [x0, x1), from strips extended by the
    border mode over [0, e) and [x1, wo); integer ones through one converted strip, ``whole``
    (see ``by_source``)."""
    raise NotImplementedError("only called from jitted code")


def _row_pass_in_place(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row, left,
                       right, whole, hrow):  # fmt: skip
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


def _row_pass_converted(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row,
                        left, right, whole, hrow):  # fmt: skip
    wo = hrow.shape[0] // channels
    fill_strip(src, r, channels, -pw, wo - pw + kw - 1, mode, cval, whole[0])
    for k in range(0, hb.shape[0], 8):
        taps8(hrow, k == 0, whole, zeros, zeros, hb, 0, w, k, wo * channels)


by_source(_row_pass, _row_pass_in_place, _row_pass_converted)


@leaf
def separable_rows(
    src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw, r0, r1,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """Output rows [r0, r1) of the separable correlation K = u vᵀ in one pass: rows by v,
    then columns by u, fused; ``correlate_separable`` runs the chunks.

    Each chunk of output rows keeps a ring of kh + 1 source rows already filtered along the row
    (taps ``hb``, ``hw``: element offsets b·C and weights v[b]), so that the intermediate image
    never leaves the cache. Output rows go in pairs, like the direct path's: ring row
    i + a meets u[a] for row i and u[a − 1] for row i + 1 (taps ``vj``, ``vw``, ``vv``: a, and
    those weights); a last single row has taps ``sj``, ``sw``. A source row outside the image in
    constant mode filters to ``hcval`` = cval·Σv. ``out``/``iout`` as in ``direct_rows``.
    """
    if r0 >= r1:
        return
    h = src.shape[0]
    no = output_shape(out, iout)[1]
    zeros = np.zeros(max(hb.shape[0], vj.shape[0]), np.int64)
    size = kh + 1
    ring = np.empty((size, no), hw.dtype)
    slots = np.empty(size, np.int64)
    tmp = np.empty((2, no), hw.dtype)
    # float rows are filtered from the source itself over the interior [x0, x1) (all taps
    # inside), from strips extended by the border mode over [0, e) and [x1, wo) (_row_pass)
    w = src.shape[1] // channels
    wo = no // channels
    x0 = min(pw, wo)
    x1 = max(x0, min(wo, w - kw + 1 + pw))
    e = x0 if x1 > 0 else wo
    left = np.empty((1, (e + kw - 1) * channels), hw.dtype)
    right = np.empty((1, (wo - x1 + kw - 1) * channels), hw.dtype)
    whole = np.empty((1, (wo + kw - 1) * channels), hw.dtype)
    row = np.zeros(1, np.int64)
    filtered = r0 - ph  # the next source row to filter into the ring
    for i in range(r0, r1, 2):
        pair = i + 1 < r1
        last = i - ph + (kh if pair else kh - 1)
        while filtered <= last:
            r = map_index(filtered, h, mode)
            hrow = ring[(filtered + ph) % size]
            if r < 0:
                fill(hrow, hcval)
            else:
                _row_pass(src, r, channels, pw, mode, cval, x0, x1, e, kw, hw, hb, zeros, row,
                          left, right, whole, hrow)  # fmt: skip
            filtered += 1
        for a in range(size):
            slots[a] = (i + a) % size
        _separable_pair(
            ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp, out, iout, i, bias, absolute, top
        )


@parallel
def correlate_separable(
    src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """``separable_rows`` over ``nchunks`` chunks of an even number of output rows, on numba's
    threads (see ``correlate_direct``)."""
    ho = output_shape(out, iout)[0]
    step = (ho + nchunks - 1) // nchunks
    step += step % 2
    for t in nb.prange(nchunks):
        separable_rows(
            src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw,
            t * step, min(ho, t * step + step), out, iout, bias, absolute, top,
        )  # fmt: skip
