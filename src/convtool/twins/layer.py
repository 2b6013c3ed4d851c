"""The twin of the jitted layer pass (``convtool._jit.layer``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convtool.twins.borders import extend_index, gather

View = Callable[[int], np.ndarray]
"""Tap t of a table as an array of samples (a shifted view of a plane or a scratch row)."""


def _group(view: View, w: np.ndarray, k: int, n: int) -> np.ndarray:
    """The sum of taps k .. k + n − 1 as ``rows.taps8`` (n = 8), ``_taps4`` (4) or ``_tap``
    (1) of ``_jit.layer`` form it."""
    p = [w[k + t] * view(k + t) for t in range(n)]
    if n == 1:
        return p[0]
    four = (p[0] + p[1]) + (p[2] + p[3])
    return four if n == 4 else four + ((p[4] + p[5]) + (p[6] + p[7]))


def _taps(acc: np.ndarray | None, view: View, w: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """``_jit.layer._taps``: ``acc`` (None: the first taps) plus taps k0 .. k1, eight at a time,
    then four, then one by one."""
    k = k0
    while k < k1:
        n = 8 if k + 8 <= k1 else 4 if k + 4 <= k1 else 1
        group = _group(view, w, k, n)
        acc = group if acc is None else acc + group
        k += n
    assert acc is not None
    return acc


def correlate_layer(src, geometry, border, taps, outputs, nchunks, ngroups, out):
    """The twin of ``_jit.layer.correlate_layer`` (``nchunks`` and ``ngroups`` do not change the
    result): the extended image gathered whole, then the same taps in the same groups."""
    channels, kh, _, ph, _ = geometry
    mode, cval = border
    dtype = taps.tw.dtype
    h = src.shape[0]
    ho, wo = out.shape[0], out.shape[1] // outputs
    wext = taps.cmap.shape[0]
    rows = extend_index(h, -ph, ho + kh - 1, mode)
    ext = gather(src, rows, taps.cmap, channels, cval, dtype).reshape(len(rows), wext, channels)
    planes = [np.ascontiguousarray(ext[..., i]) for i in range(channels)]
    result = out.reshape(ho, wo, outputs)
    for o in range(outputs):
        acc: np.ndarray | None = None

        def direct(t: int) -> np.ndarray:
            i, a = divmod(int(taps.tj[t]), kh)
            return planes[i][a : a + ho, taps.tb[t] : taps.tb[t] + wo]

        if taps.starts[o + 1] > taps.starts[o]:
            acc = _taps(None, direct, taps.tw, taps.starts[o], taps.starts[o + 1])
        for p in range(taps.pstarts[o], taps.pstarts[o + 1]):
            plane = planes[taps.pin[p]]
            column = _taps(None, lambda t, x=plane: x[t : t + ho], taps.pu[p], 0, kh)
            acc = _taps(
                acc, lambda t, c=column: c[:, taps.pb[t] : taps.pb[t] + wo], taps.pv[p], 0,
                len(taps.pb),
            )  # fmt: skip
        if acc is None:
            acc = np.zeros((ho, wo), dtype)
        result[..., o] = acc + taps.bias[o]
