"""The twin of the jitted FFT path (``convtool._jit.fft``).

``_jit.fft._fft_dif`` and ``_fft_dit`` run one butterfly per group of rows, a vector loop along the
rows; here every group and every plane of a batch at once. numba types ``sign`` (a float64)
times a float32 as a float64, and so do these sums: the twiddles' sine parts are float64.
"""

from __future__ import annotations

import numpy as np

from convtool.twins.integer import to_integer
from convtool.twins.rows import run_bands

FFT_BATCH = 4
"""Pairs of planes a twin transforms at a time."""


def _twiddles(cos: np.ndarray, sin: np.ndarray, s: int, st: int, sign: float):
    """(w1r, w1i, w2r, w2i, w3r, w3i) for butterflies j = 0..s − 1, shaped to broadcast over
    the columns: the cosines in the table's type, the signed sines in float64."""
    j = np.arange(s) * st
    sg = np.float64(sign)
    out = []
    for k in (1, 2, 3):
        out += [cos[k * j][:, None], (sg * sin[k * j])[:, None]]
    return out


def _fft_dif(x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray, sign: float):
    """``_jit.fft._fft_dif`` along axis 1 of (P, n, m) arrays ``x`` (real), ``y`` (imaginary)."""
    n = x.shape[1]
    size = n
    sg = np.float64(sign)
    while size >= 4:
        s = size // 4
        w1r, w1i, w2r, w2i, w3r, w3i = _twiddles(cos, sin, s, n // size, sign)
        shape = (x.shape[0], n // size, 4, s, x.shape[2])
        xr, xi = x.reshape(shape), y.reshape(shape)
        r0, r1, r2, r3 = (xr[:, :, k] for k in range(4))
        i0, i1, i2, i3 = (xi[:, :, k] for k in range(4))
        ar, ai, br, bi = r0 + r2, i0 + i2, r0 - r2, i0 - i2
        cr, ci = r1 + r3, i1 + i3
        er = -sg * (i1 - i3)
        ei = sg * (r1 - r3)
        fr, fi = ar - cr, ai - ci
        gr, gi = br + er, bi + ei
        hr, hi = br - er, bi - ei
        r0[...], i0[...] = ar + cr, ai + ci
        r1[...], i1[...] = fr * w2r - fi * w2i, fr * w2i + fi * w2r
        r2[...], i2[...] = gr * w1r - gi * w1i, gr * w1i + gi * w1r
        r3[...], i3[...] = hr * w3r - hi * w3i, hr * w3i + hi * w3r
        size //= 4
    if size == 2:
        _fft_radix2(x, y)


def _fft_dit(x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray, sign: float):
    """``_jit.fft._fft_dit`` along axis 1 of (P, n, m) arrays."""
    n = x.shape[1]
    s = 1
    while 4 * s <= n:
        s *= 4
    if s < n:
        _fft_radix2(x, y)
        s = 2
    else:
        s = 1
    sg = np.float64(sign)
    while s < n:
        size = 4 * s
        w1r, w1i, w2r, w2i, w3r, w3i = _twiddles(cos, sin, s, n // size, sign)
        shape = (x.shape[0], n // size, 4, s, x.shape[2])
        xr, xi = x.reshape(shape), y.reshape(shape)
        r0, r1, r2, r3 = (xr[:, :, k] for k in range(4))
        i0, i1, i2, i3 = (xi[:, :, k] for k in range(4))
        a1r, a1i = r1 * w2r - i1 * w2i, r1 * w2i + i1 * w2r
        a2r, a2i = r2 * w1r - i2 * w1i, r2 * w1i + i2 * w1r
        a3r, a3i = r3 * w3r - i3 * w3i, r3 * w3i + i3 * w3r
        ur, ui, vr, vi = r0 + a1r, i0 + a1i, r0 - a1r, i0 - a1i
        pr, pi = a2r + a3r, a2i + a3i
        zr = -sg * (a2i - a3i)
        zi = sg * (a2r - a3r)
        r0[...], i0[...] = ur + pr, ui + pi
        r2[...], i2[...] = ur - pr, ui - pi
        r1[...], i1[...] = vr + zr, vi + zi
        r3[...], i3[...] = vr - zr, vi - zi
        s *= 4


def _fft_radix2(x: np.ndarray, y: np.ndarray) -> None:
    """``_jit.fft._fft_radix2``: neighbouring rows, twiddle 1."""
    for z in (x, y):
        a, b = z[:, 0::2], z[:, 1::2]
        t = a.copy()
        a += b
        np.subtract(t, b, out=b)


def _fft_forward(x, y, c0, s0, c1, s1):
    """``_jit.fft._fft_forward`` of (P, n0, n1): the spectrum transposed, (P, n1, n0)."""
    _fft_dif(x, y, c0, s0, -1.0)
    xt, yt = np.ascontiguousarray(x.transpose(0, 2, 1)), np.ascontiguousarray(y.transpose(0, 2, 1))
    _fft_dif(xt, yt, c1, s1, -1.0)
    return xt, yt


def _fft_inverse(xt, yt, c0, s0, c1, s1):
    """``_jit.fft._fft_inverse`` of a spectrum laid out as ``_fft_forward`` leaves it."""
    _fft_dit(xt, yt, c1, s1, 1.0)
    x, y = np.ascontiguousarray(xt.transpose(0, 2, 1)), np.ascontiguousarray(yt.transpose(0, 2, 1))
    _fft_dit(x, y, c0, s0, 1.0)
    return x, y


def _run_of(indices: np.ndarray) -> bool:
    """Whether ``indices`` are consecutive positions inside the image."""
    return bool(indices[0] >= 0 and indices[-1] - indices[0] == len(indices) - 1) and bool(
        np.all(np.diff(indices) == 1)
    )


def fft_kernel_spectrum(kern, scale, spectrum):
    """The twin of ``_jit.fft.fft_kernel_spectrum``."""
    kre, kim, c0, s0, c1, s1 = spectrum
    n0, n1 = c0.shape[0], c1.shape[0]
    x = np.zeros((1, n0, n1), kre.dtype)
    y = np.zeros((1, n0, n1), kre.dtype)
    x[0, : kern.shape[0], : kern.shape[1]] = kern
    xt, yt = _fft_forward(x, y, c0, s0, c1, s1)
    with np.errstate(all="ignore"):
        kre[...] = xt[0] * scale
        kim[...] = yt[0] * -scale


def correlate_fft(src, channels, extension, spectrum, t0, t1, nchunks, output):
    """The twin of ``_jit.fft.correlate_fft``: the same planes, paired the same way, transformed
    in batches."""
    rmap, cmap, cval = extension
    kre, kim, c0, s0, c1, s1 = spectrum
    out, iout, bias, absolute, top = output
    n0, n1 = c0.shape[0], c1.shape[0]
    target = out if out is not None else iout
    ho, no = target.shape
    wo = no // channels
    across = (wo + t1 - 1) // t1
    planes = (ho + t0 - 1) // t0 * across * channels
    pairs = (planes + 1) // 2
    dtype = kre.dtype.type

    def gather(plane: int, dst: np.ndarray) -> None:
        tile, ch = divmod(plane, channels)
        y0, x0 = (tile // across) * t0, (tile % across) * t1
        rows = min(n0, len(rmap) - y0)
        cols = min(n1, len(cmap) - x0)
        r, c = rmap[y0 : y0 + rows], cmap[x0 : x0 + cols]
        if _run_of(r) and _run_of(c):  # a window inside the image: plain slices
            first = int(c[0]) * channels + ch
            dst[:rows, :cols] = src[r[0] : r[0] + rows, first : first + cols * channels : channels]
            return
        window = src[np.maximum(r, 0)][:, np.maximum(c, 0) * channels + ch].astype(dtype)
        window[r < 0] = cval
        window[:, c < 0] = cval
        dst[:rows, :cols] = window

    def scatter(plane: int, acc: np.ndarray) -> None:
        tile, ch = divmod(plane, channels)
        y0, x0 = (tile // across) * t0, (tile % across) * t1
        rows, cols = min(t0, ho - y0), min(t1, wo - x0)
        part = acc[:rows, :cols]
        columns = slice(x0 * channels + ch, (x0 + cols) * channels, channels)
        if iout is None:
            out[y0 : y0 + rows, columns] = part
        else:
            iout[y0 : y0 + rows, columns] = to_integer(part, bias, absolute, top)

    def work(q0: int, q1: int) -> None:
        count = q1 - q0
        x = np.zeros((count, n0, n1), dtype)
        y = np.zeros((count, n0, n1), dtype)
        for k in range(count):
            p = 2 * (q0 + k)
            gather(p, x[k])
            if p + 1 < planes:
                gather(p + 1, y[k])
        xt, yt = _fft_forward(x, y, c0, s0, c1, s1)
        a, b = xt * kre - yt * kim, xt * kim + yt * kre
        x, y = _fft_inverse(a, b, c0, s0, c1, s1)
        for k in range(count):
            p = 2 * (q0 + k)
            scatter(p, x[k])
            if p + 1 < planes:
                scatter(p + 1, y[k])

    run_bands(pairs, work, FFT_BATCH)  # read at call time
