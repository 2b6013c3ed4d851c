"""The twin of the jitted separable path (``convtool._jit.separable``)."""

from __future__ import annotations

import numpy as np

from convtool.twins.borders import extend_index, gather
from convtool.twins.integer import to_integer
from convtool.twins.rows import groups, may_skip_zeros, run_bands


def correlate_separable(src, geometry, border, taps, nchunks, output):
    """The twin of ``_jit.separable.correlate_separable``: every row filtered along the row,
    then the columns, all in the float type of the weights."""
    channels, kh, kw, ph, pw = geometry
    mode, cval = border
    hb, hw, vj, vw, vv, sj, sw, hcval = taps
    out, iout, bias, absolute, top = output
    target = out if out is not None else iout
    ho, no = target.shape
    h, w = src.shape[0], src.shape[1] // channels
    wo = no // channels
    dtype = hw.dtype.type
    cols = extend_index(w, -pw, wo + kw - 1, mode)
    zeros = np.zeros(len(hb), np.int64)
    skip = may_skip_zeros(src)
    signed = iout is None  # float output: zero signs matter
    rows = extend_index(h, -ph, ho + kh + 1, mode)  # every source row the output reads
    filtered = np.empty((len(rows), no), dtype)

    def along_rows(r0: int, r1: int) -> None:
        block = gather(src, rows[r0:r1], cols, channels, cval, dtype)
        filtered[r0:r1] = groups(
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
            acc = groups(view, (taps, offsets, weights), dtype, dtype, skip, signed)
            rows_out = slice(first, first + 2 * (n - 1) + 1, 2)
            if iout is None:
                out[rows_out] = acc
            else:
                iout[rows_out] = to_integer(acc, bias, absolute, top)

    run_bands(len(rows), along_rows)
    run_bands(ho, along_columns)
