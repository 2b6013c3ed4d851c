"""The only numba module: every jitted loop of convtool, with its options set here once.

Functions take arrays and scalars only and read no globals. Images arrive as 2-D arrays of
shape (H, W·C) with the C channels interleaved, so one pass over a row serves every channel; a
tap at column offset b is the slice ``row[b·C : b·C + W·C]``, which numba vectorises (an index
computed at run time, ``row[q + b·C]``, is not: numba must allow for it being negative).
Border modes are small ints (see ``correlate.BORDER_CODES``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np
from numba.extending import overload

_FASTMATH: set[str] = set()
"""IEEE arithmetic as written: no reassociation, no fused multiply-adds, so that every sum is
exactly the one its numpy twin (``convtool.npcore``) computes and a run with an empty cache
writes the bytes a warm one does."""

_FASTMATH_REDUCTIONS = {"nsz", "arcp", "contract", "reassoc"}
"""For learn's sums over whole images, which vectorise only when they may be reassociated. Over
stored integer samples every product and partial sum of the normal equations is an integer
below 2**53, exact in any order, which is what learn's twin (``convtool.nplearn``) relies on."""


def _parallel(fn: Callable[..., object]) -> Any:
    """Compile ``fn`` for the thread pool: ``prange`` loops run on every core."""
    return nb.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True)(fn)


def _parallel_reductions(fn: Callable[..., object]) -> Any:
    """``_parallel`` for loops that sum over whole images (``_FASTMATH_REDUCTIONS``)."""
    return nb.njit(parallel=True, cache=True, fastmath=_FASTMATH_REDUCTIONS, nogil=True)(fn)


def _serial(fn: Callable[..., object]) -> Any:
    """Compile a helper that the parallel loops call (inlined into them)."""
    return nb.njit(cache=True, fastmath=_FASTMATH, nogil=True, inline="always")(fn)


def _overload_by(stub: Callable[..., object], pick: Callable[[dict[str, Any]], Any]) -> None:
    """Implement ``stub`` in jitted code by ``pick({argument name: its numba type})``, chosen
    when numba compiles a call (the choosers below say on what)."""
    signature = inspect.signature(stub)
    names = list(signature.parameters)

    def choose(*args: Any) -> Any:
        return pick(dict(zip(names, args, strict=True)))

    choose.__signature__ = signature  # type: ignore[attr-defined]
    overload(stub, jit_options={"fastmath": _FASTMATH, "nogil": True}, inline="never")(choose)


def _by_kind(stub: Callable[..., object], impls: tuple[Callable[..., object], ...]) -> None:
    """Implement ``stub`` in jitted code by ``impls[len(kind)]``, ``kind`` being its argument of
    that name: a tuple whose length, part of its type, selects the implementation when numba
    compiles, so that only the one in use is compiled (numba compiles a function again into
    every caller it is linked into: the unused ones cost seconds for nothing). A type rather
    than a literal value: a literal makes every call from Python take numba's slow path
    (~30 ms)."""

    def pick(types: dict[str, Any]) -> Any:
        kind = types["kind"]
        return impls[len(kind)] if isinstance(kind, nb.types.BaseTuple) else None

    _overload_by(stub, pick)


def _by_output(
    stub: Callable[..., object], to_float: Callable[..., object], to_int: Callable[..., object]
) -> None:
    """Implement ``stub`` in jitted code by ``to_float`` when its argument ``iout`` is None (the
    output is the float array ``out``), else by ``to_int`` (``out`` is None, the output the
    integer array ``iout``): chosen by type when numba compiles, so that each compiles only
    what it uses (numba prunes ``x is None`` branches only where x is None)."""
    _overload_by(
        stub, lambda types: to_float if isinstance(types["iout"], nb.types.NoneType) else to_int
    )


def _by_source(
    stub: Callable[..., object], in_place: Callable[..., object], converted: Callable[..., object]
) -> None:
    """Implement ``stub`` in jitted code by ``in_place`` when its argument ``src`` has the
    dtype of its argument ``w`` (float samples, read where they are), else by ``converted``
    (integer samples, converted to floats first): chosen by type when numba compiles, so that
    the integer path does not compile the loops over integer rows (about a second more of a
    cold start) for the little the conversion costs."""
    _overload_by(
        stub, lambda types: in_place if types["src"].dtype == types["w"].dtype else converted
    )


def _leaf(fn: Callable[..., object]) -> Any:
    """Compile a helper on its own, called (not inlined): an innermost vector loop gets its
    registers to itself, and a chunk of work is compiled once (numba's parallel passes, slow on
    big loop bodies, only see the short ``prange`` loop that calls it)."""
    return nb.njit(cache=True, fastmath=_FASTMATH, nogil=True)(fn)


REFLECT, MIRROR, NEAREST, WRAP, CONSTANT = 0, 1, 2, 3, 4


@_serial
def map_index(x, n, mode):
    """Index into [0, n) that position ``x`` of the extended line reads; −1 means ``cval``."""
    if 0 <= x < n:
        return x
    if mode == 0:  # reflect: d c b a | a b c d | d c b a
        p = 2 * n
        x = x % p
        return p - 1 - x if x >= n else x
    if mode == 1:  # mirror: d c b | a b c d | c b a
        if n == 1:
            return 0
        p = 2 * n - 2
        x = x % p
        return p - x if x >= n else x
    if mode == 2:  # nearest: a a a | a b c d | d d d
        return 0 if x < 0 else n - 1
    if mode == 3:  # wrap: b c d | a b c d | a b c
        return x % n
    return -1


# --- direct correlation -----------------------------------------------------------------------
#
# Output row i, pixel x, channel c reads X̃[i + a − ph, x + b − pw] for every tap (a, b): same-size
# correlation has ph, pw = kh//2, kw//2, valid correlation ph = pw = 0 and a smaller output.
# Output columns whose taps all fall inside the row (the interior) read slices of the source rows
# themselves, ``src[r, at + b·C : at + b·C + m]``, r chosen by ``map_index`` for rows above and
# below the image; the few columns at the left and right edges read short "strips" of the
# extended rows, built per output row (and so does the whole width of the rows that constant
# mode extends with cval rows). Nothing is ever padded whole. ``direct_rows`` does one chunk of
# output rows; ``correlate_direct`` runs the chunks on numba's threads.
#
# Rows are done in pairs: every source row is loaded once for both outputs (it meets K[a] for
# the upper row and K[a − 1] for the lower one), which halves the loads per multiply-add; eight
# taps are summed before an output row is loaded and stored again. The innermost loops
# (``_taps8*``, ``_k3x3*``) are compiled on their own (``_leaf``): inlined into the loop over rows
# they lost their registers (49 ms against 34 ms for a 15×15 kernel on a 4K image on one core).
# A 3×3 kernel is written out in full, both rows of a pair in one pass (1.15× faster than its
# two groups of taps; a 5×5 written out was slower than its four groups, and is not).
#
# Tap tables (built by ``correlate.py``): a pair of output rows reads source rows j = 0..kh, tap t
# being row ``tj[t]`` at element offset ``tb[t]`` (= b·C) with weight ``tw[t]`` = K[j, b] for the
# upper row and ``tv[t]`` = K[j − 1, b] for the lower one (0 outside the kernel); a single row has
# (``sj``, ``sb``, ``sw``). Tables are padded to a multiple of 8 taps with zero weights. In the
# leaves, ``rows[sel[j]]`` is source row j and ``at`` the element where the segment starts.


@_leaf
def _taps8(o, first, rows, sel, tj, tb, at, w, k, n):
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


@_leaf
def _taps8_pair(o0, o1, first, rows, sel, tj, tb, at, w, v, k, n):
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


@_leaf
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


@_leaf
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


@_leaf
def _k3x3_pair_int(i0, i1, rows, sel, at, c, k, bias, absolute, top, n):
    """``_k3x3_pair`` with the conversion of ``_to_integer`` fused into the write: integer rows
    ``i0``, ``i1`` (18 % faster than the float rows converted afterwards)."""
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


def _segment(rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, m):
    """``o0[:m]`` (and ``o1[:m]`` when ``pair``): output rows i (and i + 1) from source rows
    ``rows[sel[j]]``, read from element ``at``. ``kind`` (a tuple, see ``_by_kind``) has length
    0 for the tap tables, 1 for the 3×3 kernel written out."""
    raise NotImplementedError("only called from jitted code")


def _segment_taps(rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, m):
    if pair:
        for k in range(0, tj.shape[0], 8):
            _taps8_pair(o0, o1, k == 0, rows, sel, tj, tb, at, tw, tv, k, m)
    else:
        for k in range(0, sj.shape[0], 8):
            _taps8(o0, k == 0, rows, sel, sj, sb, at, sw, k, m)


def _segment_3x3(rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, m):
    if pair:
        _k3x3_pair(o0, o1, rows, sel, at, c, kern, m)
    else:
        _k3x3(o0, rows, sel, at, c, kern, m)


_by_kind(_segment, (_segment_taps, _segment_3x3))


def _segment_int(
    rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, i0, i1, bias,
    absolute, top, m,
):  # fmt: skip
    """``_segment`` into integer rows ``i0[:m]`` (and ``i1[:m]``) through ``_to_integer``, the
    float rows ``o0``, ``o1`` serving as scratch (the written-out 3×3 needs none)."""
    raise NotImplementedError("only called from jitted code")


def _segment_int_taps(
    rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, i0, i1, bias,
    absolute, top, m,
):  # fmt: skip
    _segment(rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, m)
    _to_integer(o0[:m], bias, absolute, top, i0[:m])
    if pair:
        _to_integer(o1[:m], bias, absolute, top, i1[:m])


def _segment_int_3x3(
    rows, sel, at, c, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1, i0, i1, bias,
    absolute, top, m,
):  # fmt: skip
    if pair:
        _k3x3_pair_int(i0, i1, rows, sel, at, c, kern, bias, absolute, top, m)
    else:
        _k3x3(o0, rows, sel, at, c, kern, m)
        _to_integer(o0[:m], bias, absolute, top, i0[:m])


_by_kind(_segment_int, (_segment_int_taps, _segment_int_3x3))


@_serial
def _fill(dst, value):
    """``dst[:] = value`` for a 1-D ``dst``, as a loop: numba took ~1–2 s longer to compile a
    slice assignment, in every function it is inlined into."""
    for q in range(dst.shape[0]):
        dst[q] = value


@_serial
def _fill2(dst, value):
    """``_fill`` for a 2-D ``dst``."""
    for r in range(dst.shape[0]):
        d = dst[r]
        for q in range(d.shape[0]):
            d[q] = value


@_serial
def _fill_strip(src, r, channels, x0, x1, mode, cval, dst):
    """Pixels [x0, x1) of source row ``r`` extended by ``mode`` into ``dst`` (r = −1: cval)."""
    w = src.shape[1] // channels
    for x in range(x0, x1):
        m = map_index(x, w, mode)
        base = (x - x0) * channels
        for c in range(channels):
            dst[base + c] = cval if (m < 0 or r < 0) else src[r, m * channels + c]


def _output_shape(out, iout):
    """(rows, elements per row) of the output, ``out`` or ``iout`` (see ``_by_output``)."""
    raise NotImplementedError("only called from jitted code")


def _output_shape_float(out, iout):
    return out.shape[0], out.shape[1]


def _output_shape_int(out, iout):
    return iout.shape[0], iout.shape[1]


_by_output(_output_shape, _output_shape_float, _output_shape_int)


def _direct_pair(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, kern, pair, tj, tb, tw, tv,
    sj, sb, sw, tmp, out, iout, i, bias, absolute, top,
):  # fmt: skip
    """Output row i (and i + 1 when ``pair``) of ``direct_rows``: the interior [a, b) from the
    source rows, the left strip [0, e) and the right one [b, wo) (when 0 < b < wo)."""
    raise NotImplementedError("only called from jitted code")


def _direct_pair_float(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, kern, pair, tj, tb, tw, tv,
    sj, sb, sw, tmp, out, iout, i, bias, absolute, top,
):  # fmt: skip
    o0 = out[i]
    o1 = out[i + 1] if pair else tmp[1]
    if b > a:
        q = a * channels
        _segment(
            src, sel, q - pw * channels, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb,
            sw, o0[q:], o1[q:], (b - a) * channels,
        )  # fmt: skip
    if e > 0:
        _segment(
            left, ident, 0, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0, o1,
            e * channels,
        )  # fmt: skip
    if 0 < b < wo:
        q = b * channels
        _segment(
            right, ident, 0, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, o0[q:],
            o1[q:], (wo - b) * channels,
        )  # fmt: skip


def _direct_pair_int(
    src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, kern, pair, tj, tb, tw, tv,
    sj, sb, sw, tmp, out, iout, i, bias, absolute, top,
):  # fmt: skip
    i0 = iout[i]
    i1 = iout[i + 1] if pair else iout[i]
    t0 = tmp[0]
    t1 = tmp[1]
    if b > a:
        q = a * channels
        _segment_int(
            src, sel, q - pw * channels, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb,
            sw, t0[q:], t1[q:], i0[q:], i1[q:], bias, absolute, top, (b - a) * channels,
        )  # fmt: skip
    if e > 0:
        _segment_int(
            left, ident, 0, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, t0, t1, i0,
            i1, bias, absolute, top, e * channels,
        )  # fmt: skip
    if 0 < b < wo:
        q = b * channels
        _segment_int(
            right, ident, 0, channels, kind, kern, pair, tj, tb, tw, tv, sj, sb, sw, t0[q:],
            t1[q:], i0[q:], i1[q:], bias, absolute, top, (wo - b) * channels,
        )  # fmt: skip


_by_output(_direct_pair, _direct_pair_float, _direct_pair_int)


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
    _to_integer(tmp[0], bias, absolute, top, iout[i])
    if pair:
        _to_integer(tmp[1], bias, absolute, top, iout[i + 1])


_by_output(_separable_pair, _separable_pair_float, _separable_pair_int)


@_serial
def _column_pass(ring, slots, vj, zeros, vw, vv, sj, sw, pair, o0, o1):
    """Rows ``o0`` (and ``o1``) = Σ_a u[a]·ring[slots[a]] (the pair tables, or the single)."""
    n = o0.shape[0]
    if pair:
        for k in range(0, vj.shape[0], 8):
            _taps8_pair(o0, o1, k == 0, ring, slots, vj, zeros, 0, vw, vv, k, n)
    else:
        for k in range(0, sj.shape[0], 8):
            _taps8(o0, k == 0, ring, slots, sj, zeros, 0, sw, k, n)


@_leaf
def _to_integer(acc, bias, absolute, top, out):
    """``out`` = clamp(round-half-even(acc + bias, or its absolute value), 0, top).

    ``bias`` and ``top`` have the type of ``acc``, so that the loop stays in that precision.
    """
    zero = top - top
    if absolute:
        for q in range(out.shape[0]):
            out[q] = np.rint(min(abs(acc[q] + bias), top))
    else:
        for q in range(out.shape[0]):
            out[q] = np.rint(min(max(acc[q] + bias, zero), top))


@_leaf
def direct_rows(
    src, channels, ph, pw, mode, cval, kind, kern, tj, tb, tw, tv, sj, sb, sw, r0, r1,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """Output rows [r0, r1) of the direct correlation of ``src`` (H, W·C) into ``out``
    (Ho, Wo·C), two at a time (one at a time for a one-row kernel); see above.
    ``correlate_direct`` runs chunks of an even number of rows on numba's threads.

    ``kern`` is the (kh, kw) kernel (read by the written-out 3×3, ``kind`` a tuple of length 1,
    see ``_segment``; the tap tables by the empty one), in the float type of the computation.
    Integer output: ``out`` is None and ``iout`` (uint8 or uint16) gets the rows through
    ``_to_integer(row, bias, absolute, top)``; float output: ``iout`` is None (numba then
    compiles only the branches each needs).
    """
    if r0 >= r1:
        return
    h = src.shape[0]
    w = src.shape[1] // channels
    kh = kern.shape[0]
    kw = kern.shape[1]
    no = _output_shape(out, iout)[1]
    wo = no // channels
    x0 = min(pw, wo)  # interior columns [x0, x1)
    x1 = max(x0, min(wo, w - kw + 1 + pw))
    nr = wo - x1 + kw - 1
    sel = np.empty(kh + 1, np.int64)
    ident = np.arange(kh + 1)
    # strips: the left edge, the right edge, or (constant mode, rows of cval) the whole width
    left = np.empty((kh + 1, ((wo if mode == 4 else x0) + kw - 1) * channels), kern.dtype)
    right = np.empty((kh + 1, nr * channels), kern.dtype)
    tmp = np.empty((2, no), kern.dtype)
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
                _fill_strip(src, sel[j], channels, -pw, e - pw + kw - 1, mode, cval, left[j])
        if b > 0 and b < wo:
            for j in range(rows):
                _fill_strip(src, sel[j], channels, b - pw, b - pw + nr, mode, cval, right[j])
        _direct_pair(
            src, sel, left, right, ident, pw, a, b, e, wo, channels, kind, kern, pair, tj, tb,
            tw, tv, sj, sb, sw, tmp, out, iout, i, bias, absolute, top,
        )  # fmt: skip


@_parallel
def correlate_direct(
    src, channels, ph, pw, mode, cval, kind, kern, tj, tb, tw, tv, sj, sb, sw, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """``direct_rows`` over ``nchunks`` chunks of an even number of output rows, on numba's
    threads (OpenMP-style workers scaled 1.87× from 1 to 2 threads on a 4K 5×5 where a pool of
    Python threads running the chunks reached 1.43–1.49×, the second thread starting slower)."""
    ho = _output_shape(out, iout)[0]
    step = (ho + nchunks - 1) // nchunks
    step += step % 2
    for t in nb.prange(nchunks):
        direct_rows(
            src, channels, ph, pw, mode, cval, kind, kern, tj, tb, tw, tv, sj, sb, sw,
            t * step, min(ho, t * step + step), out, iout, bias, absolute, top,
        )  # fmt: skip


# --- separable correlation ------------------------------------------------------------------


def _row_pass(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row, left, right,
              whole, hrow):  # fmt: skip
    """Source row ``r`` filtered along the row (taps ``hb``, weights ``w``) into ``hrow``: float
    samples straight from ``src`` over the interior [x0, x1), from strips extended by the
    border mode over [0, e) and [x1, wo); integer ones through one converted strip, ``whole``
    (see ``_by_source``)."""
    raise NotImplementedError("only called from jitted code")


def _row_pass_in_place(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row, left,
                       right, whole, hrow):  # fmt: skip
    wo = hrow.shape[0] // channels
    row[0] = r
    q = x0 * channels
    if x1 > x0:
        for k in range(0, hb.shape[0], 8):
            _taps8(hrow[q:], k == 0, src, row, zeros, hb, q - pw * channels, w, k,
                   (x1 - x0) * channels)  # fmt: skip
    if e > 0:
        _fill_strip(src, r, channels, -pw, e - pw + kw - 1, mode, cval, left[0])
        for k in range(0, hb.shape[0], 8):
            _taps8(hrow, k == 0, left, zeros, zeros, hb, 0, w, k, e * channels)
    if 0 < x1 < wo:
        q = x1 * channels
        _fill_strip(src, r, channels, x1 - pw, wo - pw + kw - 1, mode, cval, right[0])
        for k in range(0, hb.shape[0], 8):
            _taps8(hrow[q:], k == 0, right, zeros, zeros, hb, 0, w, k, (wo - x1) * channels)


def _row_pass_converted(src, r, channels, pw, mode, cval, x0, x1, e, kw, w, hb, zeros, row,
                        left, right, whole, hrow):  # fmt: skip
    wo = hrow.shape[0] // channels
    _fill_strip(src, r, channels, -pw, wo - pw + kw - 1, mode, cval, whole[0])
    for k in range(0, hb.shape[0], 8):
        _taps8(hrow, k == 0, whole, zeros, zeros, hb, 0, w, k, wo * channels)


_by_source(_row_pass, _row_pass_in_place, _row_pass_converted)


@_leaf
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
    no = _output_shape(out, iout)[1]
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
                _fill(hrow, hcval)
            else:
                _row_pass(src, r, channels, pw, mode, cval, x0, x1, e, kw, hw, hb, zeros, row,
                          left, right, whole, hrow)  # fmt: skip
            filtered += 1
        for a in range(size):
            slots[a] = (i + a) % size
        _separable_pair(
            ring, slots, vj, zeros, vw, vv, sj, sw, pair, tmp, out, iout, i, bias, absolute, top
        )


@_parallel
def correlate_separable(
    src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """``separable_rows`` over ``nchunks`` chunks of an even number of output rows, on numba's
    threads (see ``correlate_direct``)."""
    ho = _output_shape(out, iout)[0]
    step = (ho + nchunks - 1) // nchunks
    step += step % 2
    for t in nb.prange(nchunks):
        separable_rows(
            src, channels, kh, kw, ph, pw, mode, cval, hcval, hb, hw, vj, vw, vv, sj, sw,
            t * step, min(ho, t * step + step), out, iout, bias, absolute, top,
        )  # fmt: skip


# --- FFT correlation ------------------------------------------------------------------------
#
# Overlap-save: the output is cut into tiles of t0 × t1 pixels; a tile is the valid correlation
# of its input window (t0 + kh − 1) × (t1 + kw − 1), computed as IFFT(FFT(window) · conj(FFT(K)))
# at a power-of-two size n0 × n1 ≥ the window, where nothing wraps around into the tile. Two
# real planes (tile, channel) travel together as the real and imaginary parts of one complex
# plane: K is real, so the correlation of re + i·im is corr(re) + i·corr(im). The transforms are
# radix-4 passes over whole rows (every butterfly a vector loop along the row), along axis 0,
# then along axis 1 by way of a transpose: forward decimation in frequency (natural order in,
# bit-reversed out), inverse decimation in time (bit-reversed in, natural out), so that the
# spectrum, the kernel's included, stays bit-reversed and nothing is ever permuted. Tiles are
# shared among the threads (numpy.fft runs on one thread and holds the GIL: 4K × 31×31 took
# ~1.6× OpenCV's time through it).
#
# Twiddle tables ``cos``, ``sin`` hold cos(2πk/n), sin(2πk/n) for k = 0..n−1; ``sign`` is −1 for
# the forward transform, +1 for the inverse (unscaled: the scale is folded into the kernel).


@_leaf
def _fft_dif(re, im, cos, sin, sign):
    """In-place FFT along axis 0 of (n, m) arrays (n a power of two): natural in, bit-reversed
    out. Radix-4 passes (two radix-2 stages each), then a radix-2 pass when log2 n is odd."""
    n = re.shape[0]
    m = re.shape[1]
    size = n
    while size >= 4:
        s = size // 4
        st = n // size
        for g in range(0, n, size):
            for j in range(s):
                w1r, w1i = cos[j * st], sign * sin[j * st]
                w2r, w2i = cos[2 * j * st], sign * sin[2 * j * st]
                w3r, w3i = cos[3 * j * st], sign * sin[3 * j * st]
                r0, i0 = re[g + j], im[g + j]
                r1, i1 = re[g + j + s], im[g + j + s]
                r2, i2 = re[g + j + 2 * s], im[g + j + 2 * s]
                r3, i3 = re[g + j + 3 * s], im[g + j + 3 * s]
                for q in range(m):
                    ar = r0[q] + r2[q]
                    ai = i0[q] + i2[q]
                    br = r0[q] - r2[q]
                    bi = i0[q] - i2[q]
                    cr = r1[q] + r3[q]
                    ci = i1[q] + i3[q]
                    er = -sign * (i1[q] - i3[q])  # (x1 − x3) · sign·i
                    ei = sign * (r1[q] - r3[q])
                    r0[q] = ar + cr
                    i0[q] = ai + ci
                    fr = ar - cr
                    fi = ai - ci
                    r1[q] = fr * w2r - fi * w2i
                    i1[q] = fr * w2i + fi * w2r
                    gr = br + er
                    gi = bi + ei
                    r2[q] = gr * w1r - gi * w1i
                    i2[q] = gr * w1i + gi * w1r
                    hr = br - er
                    hi = bi - ei
                    r3[q] = hr * w3r - hi * w3i
                    i3[q] = hr * w3i + hi * w3r
        size //= 4
    if size == 2:
        _fft_radix2(re, im)


@_leaf
def _fft_dit(re, im, cos, sin, sign):
    """In-place FFT along axis 0 of (n, m) arrays: bit-reversed in, natural out (the mirror
    image of ``_fft_dif``: a radix-2 pass first when log2 n is odd, then radix-4 passes)."""
    n = re.shape[0]
    m = re.shape[1]
    s = 1
    while 4 * s <= n:
        s *= 4
    if s < n:  # log2 n odd
        _fft_radix2(re, im)
        s = 2
    else:
        s = 1
    while s < n:
        size = 4 * s
        st = n // size
        for g in range(0, n, size):
            for j in range(s):
                w1r, w1i = cos[j * st], sign * sin[j * st]
                w2r, w2i = cos[2 * j * st], sign * sin[2 * j * st]
                w3r, w3i = cos[3 * j * st], sign * sin[3 * j * st]
                r0, i0 = re[g + j], im[g + j]
                r1, i1 = re[g + j + s], im[g + j + s]
                r2, i2 = re[g + j + 2 * s], im[g + j + 2 * s]
                r3, i3 = re[g + j + 3 * s], im[g + j + 3 * s]
                for q in range(m):
                    a1r = r1[q] * w2r - i1[q] * w2i
                    a1i = r1[q] * w2i + i1[q] * w2r
                    a2r = r2[q] * w1r - i2[q] * w1i
                    a2i = r2[q] * w1i + i2[q] * w1r
                    a3r = r3[q] * w3r - i3[q] * w3i
                    a3i = r3[q] * w3i + i3[q] * w3r
                    ur = r0[q] + a1r
                    ui = i0[q] + a1i
                    vr = r0[q] - a1r
                    vi = i0[q] - a1i
                    pr = a2r + a3r
                    pi = a2i + a3i
                    zr = -sign * (a2i - a3i)  # (a2 − a3) · sign·i
                    zi = sign * (a2r - a3r)
                    r0[q] = ur + pr
                    i0[q] = ui + pi
                    r2[q] = ur - pr
                    i2[q] = ui - pi
                    r1[q] = vr + zr
                    i1[q] = vi + zi
                    r3[q] = vr - zr
                    i3[q] = vi - zi
        s *= 4


@_leaf
def _fft_radix2(re, im):
    """The radix-2 pass on neighbouring rows (its twiddle is 1)."""
    for g in range(0, re.shape[0], 2):
        ar, ai = re[g], im[g]
        br, bi = re[g + 1], im[g + 1]
        for q in range(re.shape[1]):
            xr = ar[q]
            xi = ai[q]
            ar[q] = xr + br[q]
            ai[q] = xi + bi[q]
            br[q] = xr - br[q]
            bi[q] = xi - bi[q]


@_leaf
def _transpose(src, dst):
    """``dst`` = ``src``ᵀ by blocks of 8×8 (both sides multiples of 8)."""
    n, m = src.shape
    for i in range(0, n, 8):
        s0, s1, s2, s3 = src[i], src[i + 1], src[i + 2], src[i + 3]
        s4, s5, s6, s7 = src[i + 4], src[i + 5], src[i + 6], src[i + 7]
        for j0 in range(0, m, 8):
            for j in range(j0, j0 + 8):
                d = dst[j]
                d[i] = s0[j]
                d[i + 1] = s1[j]
                d[i + 2] = s2[j]
                d[i + 3] = s3[j]
                d[i + 4] = s4[j]
                d[i + 5] = s5[j]
                d[i + 6] = s6[j]
                d[i + 7] = s7[j]


@_leaf
def _fft_forward(re, im, ret, imt, c0, s0, c1, s1):
    """2-D forward transform of (n0, n1) ``re + i·im`` into (n1, n0) ``ret + i·imt`` (the
    spectrum transposed, both axes bit-reversed). ``re``, ``im`` are overwritten."""
    _fft_dif(re, im, c0, s0, -1.0)
    _transpose(re, ret)
    _transpose(im, imt)
    _fft_dif(ret, imt, c1, s1, -1.0)


@_leaf
def _fft_inverse(ret, imt, re, im, c0, s0, c1, s1):
    """2-D inverse (unscaled) of a spectrum laid out as ``_fft_forward`` leaves it."""
    _fft_dit(ret, imt, c1, s1, 1.0)
    _transpose(ret, re)
    _transpose(imt, im)
    _fft_dit(re, im, c0, s0, 1.0)


@_leaf
def fft_kernel_spectrum(kern, c0, s0, c1, s1, scale, kre, kim):
    """``kre + i·kim`` (n1, n0): scale · the conjugate spectrum of ``kern`` zero-padded to
    n0 × n1, laid out as ``_fft_forward`` leaves a spectrum."""
    n0 = c0.shape[0]
    n1 = c1.shape[0]
    re = np.zeros((n0, n1), kre.dtype)
    im = np.zeros((n0, n1), kre.dtype)
    for a in range(kern.shape[0]):
        for b in range(kern.shape[1]):
            re[a, b] = kern[a, b]
    _fft_forward(re, im, kre, kim, c0, s0, c1, s1)
    for i in range(n1):
        for j in range(n0):
            kre[i, j] *= scale
            kim[i, j] *= -scale


@_leaf
def _fft_gather(src, channels, rmap, cmap, cval, plane, t0, t1, across, dst):
    """The input window of ``plane`` (tile·C + channel) into ``dst`` (n0, n1), zero around it:
    window row r, column c read ``src[rmap[y0 + r], cmap[x0 + c]·C + ch]`` (−1: cval)."""
    tile = plane // channels
    ch = plane % channels
    y0 = (tile // across) * t0
    x0 = (tile % across) * t1
    n0, n1 = dst.shape
    rows = min(n0, rmap.shape[0] - y0)
    cols = min(n1, cmap.shape[0] - x0)
    first = cmap[x0]
    inside = first >= 0 and cmap[x0 + cols - 1] == first + cols - 1  # columns need no mapping
    for r in range(rows):
        d = dst[r]
        sr = rmap[y0 + r]
        if sr < 0:
            _fill(d[:cols], cval)
        elif inside:
            row = src[sr, first * channels + ch : (first + cols) * channels : channels]
            for c in range(cols):
                d[c] = row[c]
        else:
            row = src[sr]
            for c in range(cols):
                sc = cmap[x0 + c]
                d[c] = cval if sc < 0 else row[sc * channels + ch]
        _fill(d[cols:], 0)
    _fill2(dst[rows:], 0)


def _fft_scatter(acc, channels, plane, t0, t1, across, out, iout, bias, absolute, top):
    """The tile of ``plane`` from ``acc`` into ``out`` (or, converted, ``iout``)."""
    raise NotImplementedError("only called from jitted code")


def _fft_scatter_float(acc, channels, plane, t0, t1, across, out, iout, bias, absolute, top):
    _fft_scatter_to_float(acc, channels, plane, t0, t1, across, out)


def _fft_scatter_int(acc, channels, plane, t0, t1, across, out, iout, bias, absolute, top):
    _fft_scatter_to_int(acc, channels, plane, t0, t1, across, iout, bias, absolute, top)


@_leaf
def _fft_scatter_to_float(acc, channels, plane, t0, t1, across, out):
    tile = plane // channels
    y0 = (tile // across) * t0
    x0 = (tile % across) * t1
    for r in range(min(t0, out.shape[0] - y0)):
        s = acc[r]
        o = out[y0 + r, x0 * channels + plane % channels :]
        for c in range(min(t1, out.shape[1] // channels - x0)):
            o[c * channels] = s[c]


@_leaf
def _fft_scatter_to_int(acc, channels, plane, t0, t1, across, iout, bias, absolute, top):
    tile = plane // channels
    y0 = (tile // across) * t0
    x0 = (tile % across) * t1
    zero = top - top
    for r in range(min(t0, iout.shape[0] - y0)):
        s = acc[r]
        o = iout[y0 + r, x0 * channels + plane % channels :]
        for c in range(min(t1, iout.shape[1] // channels - x0)):
            v = s[c] + bias
            if absolute:
                v = abs(v)
            o[c * channels] = np.rint(min(max(v, zero), top))


_by_output(_fft_scatter, _fft_scatter_float, _fft_scatter_int)


@_parallel
def correlate_fft(
    src, channels, rmap, cmap, cval, kre, kim, c0, s0, c1, s1, t0, t1, nchunks,
    out, iout, bias, absolute, top,
):  # fmt: skip
    """FFT correlation of ``src`` (H, W·C) into ``out`` (Ho, Wo·C); see the comment above.

    ``rmap``, ``cmap`` give the source row and column of every position of the extended image
    (Ho + kh − 1 and Wo + kw − 1 of them, −1 for cval); ``kre + i·kim`` is the kernel's
    spectrum from ``fft_kernel_spectrum``, scaled by 1/(n0·n1). ``out``/``iout`` (one of them
    None), ``bias``, ``absolute``, ``top`` as in ``direct_rows``. Pairs of planes are cut
    into ``nchunks``.
    """
    n0 = c0.shape[0]
    n1 = c1.shape[0]
    ho, no = _output_shape(out, iout)
    wo = no // channels
    across = (wo + t1 - 1) // t1
    planes = (ho + t0 - 1) // t0 * across * channels
    pairs = (planes + 1) // 2
    step = (pairs + nchunks - 1) // nchunks
    for t in nb.prange(nchunks):
        _fft_pairs(
            src, channels, rmap, cmap, cval, kre, kim, c0, s0, c1, s1, t0, t1, across,
            planes, 2 * t * step, min(planes, 2 * (t * step + step)),
            np.empty((n0, n1), kre.dtype), np.empty((n0, n1), kre.dtype),
            np.empty((n1, n0), kre.dtype), np.empty((n1, n0), kre.dtype),
            out, iout, bias, absolute, top,
        )  # fmt: skip


@_leaf
def _fft_pairs(
    src, channels, rmap, cmap, cval, kre, kim, c0, s0, c1, s1, t0, t1, across, planes,
    p0, p1, re, im, ret, imt, out, iout, bias, absolute, top,
):  # fmt: skip
    """Planes [p0, p1) of ``correlate_fft``, two at a time, in the buffers given."""
    n0 = c0.shape[0]
    n1 = c1.shape[0]
    for p in range(p0, p1, 2):
        _fft_gather(src, channels, rmap, cmap, cval, p, t0, t1, across, re)
        if p + 1 < planes:
            _fft_gather(src, channels, rmap, cmap, cval, p + 1, t0, t1, across, im)
        else:
            _fill2(im, 0)
        _fft_forward(re, im, ret, imt, c0, s0, c1, s1)
        for i in range(n1):
            a, b = ret[i], imt[i]
            kr, ki = kre[i], kim[i]
            for j in range(n0):
                xr = a[j]
                xi = b[j]
                a[j] = xr * kr[j] - xi * ki[j]
                b[j] = xr * ki[j] + xi * kr[j]
        _fft_inverse(ret, imt, re, im, c0, s0, c1, s1)
        _fft_scatter(re, channels, p, t0, t1, across, out, iout, bias, absolute, top)
        if p + 1 < planes:
            _fft_scatter(im, channels, p + 1, t0, t1, across, out, iout, bias, absolute, top)


# --- learn: normal equations and gradients ---
#
# One pair at a time: ``src`` (H, W·C) the input, ``target`` (Ht, Wt·C) the target, both float32
# or both float64. The valid-output sample (i, j, c), i < H − kh + 1, j < W − kw + 1, is
# compared with ``target[i + oy, (j + ox)·C + c]``; its patch is ``src[i + a, (j + b)·C + c]``
# for the n = kh·kw taps p = a·kw + b. A target sample outside the open interval (lo, hi) is
# left out (clipped); pass −inf, +inf to keep all. Each of ``nchunks`` parallel chunks of rows
# sums into its own partial array (float64), and the partials are added at the end: nothing
# of the size (pixels × n) is ever built.


@_serial
def _learn_target_row(trow, start, lo, hi, used, value):
    """Load target samples ``trow[start : start + len(value)]`` as float64 into ``value``; mark
    in ``used`` (1.0 or 0.0) those inside (lo, hi), which are kept (the others read 0 in
    ``value``). Return how many were left out."""
    left_out = 0
    for q in range(value.shape[0]):
        y = np.float64(trow[start + q])
        if lo < y < hi:
            used[q] = 1.0
            value[q] = y
        else:
            used[q] = 0.0
            value[q] = 0.0
            left_out += 1
    return left_out


@_parallel_reductions
def learn_normal_equations(src, channels, target, oy, ox, kh, kw, lo, hi, nchunks, gram, counts):
    """Add one pair's normal equations to ``gram`` and its sample counts to ``counts``.

    With z = (x_0 … x_{n−1}, 1, y) for every kept sample, ``gram`` (n + 2, n + 2) += Σ z zᵀ:
    XᵀX in ``[:n, :n]``, the bias column Σx in ``[:n, n]``, Xᵀy in ``[:n, n + 1]``, the sample
    count in ``[n, n]``, Σy in ``[n, n + 1]`` and Σy² in ``[n + 1, n + 1]`` (both triangles
    filled). ``counts`` (int64) += (samples kept, samples left out).
    """
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    m = n + 2
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros((nchunks, m, m))
    left_out = np.zeros(nchunks, dtype=np.int64)
    used = np.empty((nchunks, length))
    value = np.empty((nchunks, length))
    tap = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        acc = partial[t]
        u = used[t]
        y = value[t]
        xu = tap[t]
        for i in range(t * step, min(ho, (t + 1) * step)):
            left_out[t] += _learn_target_row(target[i + oy], ox * channels, lo, hi, u, y)
            for p in range(n):
                col = (p % kw) * channels
                xp = src[i + p // kw, col : col + length]
                s1 = 0.0
                sy = 0.0
                for q in range(length):
                    v = u[q] * np.float64(xp[q])
                    xu[q] = v
                    s1 += v
                    sy += v * y[q]
                acc[p, n] += s1
                acc[p, n + 1] += sy
                for r in range(p, n):
                    col = (r % kw) * channels
                    xr = src[i + r // kw, col : col + length]
                    s = 0.0
                    for q in range(length):
                        s += xu[q] * np.float64(xr[q])
                    acc[p, r] += s
            s1 = 0.0
            sy = 0.0
            syy = 0.0
            for q in range(length):
                s1 += u[q]
                sy += y[q]
                syy += y[q] * y[q]
            acc[n, n] += s1
            acc[n, n + 1] += sy
            acc[n + 1, n + 1] += syy
    for t in range(nchunks):
        counts[0] += np.int64(partial[t, n, n])
        counts[1] += left_out[t]
        for p in range(m):
            for r in range(p, m):
                gram[p, r] += partial[t, p, r]
    for p in range(m):
        for r in range(p):
            gram[p, r] = gram[r, p]


@_serial
def _prediction_row(src, i, channels, kernel, bias, r):
    """``r`` = output row i of X ⋆ K + bias (valid correlation, float64), tap by tap."""
    kh, kw = kernel.shape
    length = r.shape[0]
    for q in range(length):
        r[q] = bias
    for p in range(kh * kw):
        col = (p % kw) * channels
        xp = src[i + p // kw, col : col + length]
        wt = kernel[p // kw, p % kw]
        for q in range(length):
            r[q] += wt * np.float64(xp[q])


@_parallel_reductions
def learn_residuals(
    src, channels, target, oy, ox, kernel, bias, lo, hi, shift, gradient, nchunks, out
):
    """Residuals r = X ⋆ K + bias − Y of one pair over its kept samples, added to ``out``.

    ``kernel`` (kh, kw) float64. ``out`` (n + 7) float64: ``[:n]`` += Σ r·x_p (half the
    gradient of Σ r² with respect to K; only when ``gradient``), ``[n]`` += Σ r (half its
    derivative with respect to the bias), ``[n + 1]`` += Σ r², ``[n + 2]`` = max(itself,
    max |r|), ``[n + 3]`` += samples kept, ``[n + 4]`` += samples left out, ``[n + 5]`` +=
    Σ (y − shift), ``[n + 6]`` += Σ (y − shift)² (for R², ``shift`` near the mean of y).
    """
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    n = kh * kw
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros((nchunks, n + 7))
    used = np.empty((nchunks, length))
    value = np.empty((nchunks, length))
    res = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        acc = partial[t]
        u = used[t]
        y = value[t]
        r = res[t]
        for i in range(t * step, min(ho, (t + 1) * step)):
            acc[n + 4] += _learn_target_row(target[i + oy], ox * channels, lo, hi, u, y)
            _prediction_row(src, i, channels, kernel, bias, r)
            s = 0.0
            ss = 0.0
            big = acc[n + 2]
            s1 = 0.0
            sy = 0.0
            syy = 0.0
            for q in range(length):
                e = u[q] * (r[q] - y[q])
                r[q] = e
                s += e
                ss += e * e
                big = max(big, abs(e))
                d = u[q] * (y[q] - shift)
                s1 += u[q]
                sy += d
                syy += d * d
            acc[n] += s
            acc[n + 1] += ss
            acc[n + 2] = big
            acc[n + 3] += s1
            acc[n + 5] += sy
            acc[n + 6] += syy
            if gradient:
                for p in range(n):
                    col = (p % kw) * channels
                    xp = src[i + p // kw, col : col + length]
                    g = 0.0
                    for q in range(length):
                        g += r[q] * np.float64(xp[q])
                    acc[p] += g
    for t in range(nchunks):
        for p in range(n + 7):
            if p == n + 2:
                out[p] = max(out[p], partial[t, p])
            else:
                out[p] += partial[t, p]


@_parallel
def learn_largest_error(src, channels, target, oy, ox, kernel, bias, lo, hi, nchunks, out):
    """``out[0]`` = max(itself, max |X ⋆ K + bias − Y|) over one pair's kept samples.

    Each residual is bias + Σ_p K_p·x_p − y, the taps added in order, without fastmath (no
    fused multiply-adds): the same rounding as its numpy twin, and a maximum is the same in
    any order, so the figure is the same bytes with a cold cache as with a warm one.
    """
    kh, kw = kernel.shape
    ho = src.shape[0] - kh + 1
    length = (src.shape[1] // channels - kw + 1) * channels
    step = (ho + nchunks - 1) // nchunks
    partial = np.zeros(nchunks)
    res = np.empty((nchunks, length))
    for t in nb.prange(nchunks):
        r = res[t]
        big = 0.0
        for i in range(t * step, min(ho, (t + 1) * step)):
            _prediction_row(src, i, channels, kernel, bias, r)
            trow = target[i + oy]
            for q in range(length):
                y = np.float64(trow[ox * channels + q])
                if lo < y < hi:
                    big = max(big, abs(r[q] - y))
        partial[t] = big
    for t in range(nchunks):
        out[0] = max(out[0], partial[t])


# --- PNG row filters ------------------------------------------------------------------------


@_serial
def _paeth(a, b, c):
    """PNG's Paeth predictor: of a (left), b (above) and c (above-left), the one nearest to
    a + b − c, ties in that order."""
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)


@_leaf
def png_filter(src, r0, r1, bpp, out):
    """Rows [r0, r1) of ``src`` (H, L uint8, ``bpp`` bytes per pixel) into the same rows of
    ``out`` (H, 1 + L): [type, the row filtered by PNG filter ``type``], ``type`` the filter
    whose bytes have the least sum of magnitudes read as signed bytes (libpng's heuristic;
    ties go to the lower type). Serial and without the GIL: the PNG writer runs pieces on
    Python threads (a ``prange`` loop here took seconds more to compile on a cold cache).

    Rows are copied into int16 buffers with ``bpp`` zeros in front, so that the neighbours
    left (a), above (b) and above-left (c) are plain slices, as the filters define them."""
    n = src.shape[1]
    cur = np.zeros(n + bpp, np.int16)
    prev = np.zeros(n + bpp, np.int16)
    if r0 > 0:
        above = src[r0 - 1]
        for q in range(n):
            prev[bpp + q] = above[q]
    for i in range(r0, r1):
        row = src[i]
        for q in range(n):  # a loop: a slice assignment here took 2 s more to compile
            cur[bpp + q] = row[q]
        x, a, b, c = cur[bpp:], cur[:n], prev[bpp:], prev[:n]
        s0 = s1 = s2 = s3 = s4 = 0
        for q in range(n):
            xi, ai, bi, ci = np.int32(x[q]), np.int32(a[q]), np.int32(b[q]), np.int32(c[q])
            v1 = (xi - ai) & 255
            v2 = (xi - bi) & 255
            v3 = (xi - ((ai + bi) >> 1)) & 255
            v4 = (xi - _paeth(ai, bi, ci)) & 255
            s0 += min(xi, 256 - xi)
            s1 += min(v1, 256 - v1)
            s2 += min(v2, 256 - v2)
            s3 += min(v3, 256 - v3)
            s4 += min(v4, 256 - v4)
        kind, best = 0, s0
        if s1 < best:
            kind, best = 1, s1
        if s2 < best:
            kind, best = 2, s2
        if s3 < best:
            kind, best = 3, s3
        if s4 < best:
            kind = 4
        o = out[i]
        o[0] = kind
        f = o[1:]
        for q in range(n):
            xi, ai, bi, ci = np.int32(x[q]), np.int32(a[q]), np.int32(b[q]), np.int32(c[q])
            pred = 0 if kind == 0 else ai if kind == 1 else bi if kind == 2 else _paeth(ai, bi, ci)
            if kind == 3:
                pred = (ai + bi) >> 1
            f[q] = (xi - pred) & 255
        cur, prev = prev, cur
