"""The twin of the jitted direct path (``convtool._jit.direct``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from convtool.twins.borders import extend_index, gather
from convtool.twins.integer import to_integer
from convtool.twins.rows import add, groups, may_skip_zeros, run_bands, zero_signs


def _product_type(sample: np.dtype, weight: np.dtype) -> type:
    """numba's type of a weight times a sample read from the image: its own promotion rules,
    which make float32 × uint16 a float64 (numpy's would keep float32)."""
    if weight == np.float64 or sample == np.float64 or sample == np.uint16:
        return np.float64
    return np.float32


def _k3x3(
    view: Callable[[int, int], np.ndarray],
    k: np.ndarray,
    wide: type,
    tree: str,
    skip_zeros: bool,
    signed_zeros: bool = False,
) -> np.ndarray:
    """The written-out 3×3 of ``_jit.direct._k3x3*``: rows R_a = (k[a,0]·x0 + k[a,1]·x1) +
    k[a,2]·x2, then R0 + (R1 + R2) (``tree`` "right": the upper row of a pair) or
    (R0 + R1) + R2."""

    def p(a: int, b: int) -> np.ndarray | None:
        if skip_zeros and k[a, b] == 0:
            return None
        return np.multiply(view(a, b), wide(k[a, b]), dtype=wide)

    r = [add(add(p(a, 0), p(a, 1)), p(a, 2)) for a in range(3)]
    total = add(r[0], add(r[1], r[2])) if tree == "right" else add(add(r[0], r[1]), r[2])
    total = np.zeros(view(0, 0).shape, wide) if total is None else total
    if skip_zeros and signed_zeros:
        terms = [(partial(view, a, b), k[a, b]) for a in range(3) for b in range(3)]
        zero_signs(total, terms, wide)
    return total


def correlate_direct(src, geometry, border, kind, taps, nchunks, output):
    """The twin of ``_jit.direct.correlate_direct`` (``nchunks`` does not change the
    result)."""
    channels, _, _, ph, pw = geometry
    mode, cval = border
    kern, tj, tb, tw, tv, sj, sb, sw = taps
    out, iout, bias, absolute, top = output
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
    skip_zeros = may_skip_zeros(src)

    def write(rows: np.ndarray, values: np.ndarray, q0: int, q1: int, converted: bool) -> None:
        if iout is None:
            out[rows, q0:q1] = values
        elif converted:
            iout[rows, q0:q1] = values
        else:
            iout[rows, q0:q1] = to_integer(values.astype(dtype), bias, absolute, top)

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
                write(rows, to_integer(v, prec(bias), absolute, prec(top)), q0, q1, True)
            else:
                write(rows, v.astype(dtype), q0, q1, False)
            return
        taps = (sj, sb, sw) if role == "single" else (tj, tb, tw if role == "upper" else tv)
        signed = iout is None and prec is dtype
        skip = skip_zeros and (signed or iout is not None)
        write(rows, groups(view, taps, prec, dtype, skip, signed), q0, q1, False)

    def work(r0: int, r1: int) -> None:
        rows = extend_index(h, r0 - ph, r1 - r0 + kh + 1, mode)
        block = gather(src, rows, cols, channels, cval, dtype)
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

    run_bands(ho, work)
