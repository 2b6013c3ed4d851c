"""Loops over rows shared by the direct and separable paths: eight taps summed into a row,
rows filled with a value."""

from __future__ import annotations

from convtool._jit._options import leaf, serial


@leaf
def taps8(o, first, rows, sel, tj, tb, at, w, k, n):
    """``o[:n]`` = (or +=, unless ``first``) Σ_t w[k + t] · rows[sel[tj[k + t]]][at + tb[k + t]:]
    over the eight taps t = 0..7."""
    s0 = rows[sel[tj[k]]][at + tb[k] : at + tb[k] + n]
    s1 = rows[sel[tj[k + 1]]][at + tb[k + 1] : at + tb[k + 1] + n]
    s2 = rows[sel[tj[k + 2]]][at + tb[k + 2] : at + tb[k + 2] + n]
    s3 = rows[sel[tj[k + 3]]][at + tb[k + 3] : at + tb[k + 3] + n]
    s4 = rows[sel[tj[k + 4]]][at + tb[k + 4] : at + tb[k + 4] + n]
    s5 = rows[sel[tj[k + 5]]][at + tb[k + 5] : at + tb[k + 5] + n]
    s6 = rows[sel[tj[k + 6]]][at + tb[k + 6] : at + tb[k + 6] + n]
    s7 = rows[sel[tj[k + 7]]][at + tb[k + 7] : at + tb[k + 7] + n]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    w4, w5, w6, w7 = w[k + 4], w[k + 5], w[k + 6], w[k + 7]
    if first:
        for q in range(n):
            o[q] = ((w0 * s0[q] + w1 * s1[q]) + (w2 * s2[q] + w3 * s3[q])) + (
                (w4 * s4[q] + w5 * s5[q]) + (w6 * s6[q] + w7 * s7[q])
            )
    else:
        for q in range(n):
            o[q] += ((w0 * s0[q] + w1 * s1[q]) + (w2 * s2[q] + w3 * s3[q])) + (
                (w4 * s4[q] + w5 * s5[q]) + (w6 * s6[q] + w7 * s7[q])
            )


@leaf
def taps8_pair(o0, o1, first, rows, sel, tj, tb, at, w, v, k, n):
    """Two output rows from the same eight taps: ``o0`` with weights ``w``, ``o1`` with ``v``."""
    s0 = rows[sel[tj[k]]][at + tb[k] : at + tb[k] + n]
    s1 = rows[sel[tj[k + 1]]][at + tb[k + 1] : at + tb[k + 1] + n]
    s2 = rows[sel[tj[k + 2]]][at + tb[k + 2] : at + tb[k + 2] + n]
    s3 = rows[sel[tj[k + 3]]][at + tb[k + 3] : at + tb[k + 3] + n]
    s4 = rows[sel[tj[k + 4]]][at + tb[k + 4] : at + tb[k + 4] + n]
    s5 = rows[sel[tj[k + 5]]][at + tb[k + 5] : at + tb[k + 5] + n]
    s6 = rows[sel[tj[k + 6]]][at + tb[k + 6] : at + tb[k + 6] + n]
    s7 = rows[sel[tj[k + 7]]][at + tb[k + 7] : at + tb[k + 7] + n]
    w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
    w4, w5, w6, w7 = w[k + 4], w[k + 5], w[k + 6], w[k + 7]
    v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
    v4, v5, v6, v7 = v[k + 4], v[k + 5], v[k + 6], v[k + 7]
    if first:
        for q in range(n):
            x0, x1, x2, x3 = s0[q], s1[q], s2[q], s3[q]
            x4, x5, x6, x7 = s4[q], s5[q], s6[q], s7[q]
            o0[q] = ((w0 * x0 + w1 * x1) + (w2 * x2 + w3 * x3)) + (
                (w4 * x4 + w5 * x5) + (w6 * x6 + w7 * x7)
            )
            o1[q] = ((v0 * x0 + v1 * x1) + (v2 * x2 + v3 * x3)) + (
                (v4 * x4 + v5 * x5) + (v6 * x6 + v7 * x7)
            )
    else:
        for q in range(n):
            x0, x1, x2, x3 = s0[q], s1[q], s2[q], s3[q]
            x4, x5, x6, x7 = s4[q], s5[q], s6[q], s7[q]
            o0[q] += ((w0 * x0 + w1 * x1) + (w2 * x2 + w3 * x3)) + (
                (w4 * x4 + w5 * x5) + (w6 * x6 + w7 * x7)
            )
            o1[q] += ((v0 * x0 + v1 * x1) + (v2 * x2 + v3 * x3)) + (
                (v4 * x4 + v5 * x5) + (v6 * x6 + v7 * x7)
            )


@serial
def fill(dst, value):
    """``dst[:] = value`` for a 1-D ``dst``, as a loop: numba compiles a slice assignment
    slowly, in every function it is inlined into."""
    for q in range(dst.shape[0]):
        dst[q] = value


@serial
def fill2(dst, value):
    """``fill`` for a 2-D ``dst``."""
    for r in range(dst.shape[0]):
        d = dst[r]
        for q in range(d.shape[0]):
            d[q] = value
