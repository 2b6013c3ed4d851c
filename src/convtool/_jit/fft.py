"""Correlation through the FFT: overlap-save tiles, radix-4 transforms along rows.

Overlap-save: the output is cut into tiles of t0 × t1 pixels; a tile is the valid correlation
of its input window (t0 + kh − 1) × (t1 + kw − 1), computed as IFFT(FFT(window) · conj(FFT(K)))
at a power-of-two size n0 × n1 ≥ the window, where nothing wraps around into the tile. Two
real planes (tile, channel) travel together as the real and imaginary parts of one complex
plane: K is real, so the correlation of re + i·im is corr(re) + i·corr(im). The transforms are
radix-4 passes over whole rows (every butterfly a vector loop along the row), along axis 0,
then along axis 1 by way of a transpose: forward decimation in frequency (natural order in,
bit-reversed out), inverse decimation in time (bit-reversed in, natural out), so that the
spectrum, the kernel's included, stays bit-reversed and nothing is ever permuted. Tiles are
shared among the threads (numpy.fft runs on one thread and holds the GIL).

Twiddle tables ``cos``, ``sin`` hold cos(2πk/n), sin(2πk/n) for k = 0..n−1; ``sign`` is −1 for
the forward transform, +1 for the inverse (unscaled: the scale is folded into the kernel).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from convtool._jit._options import by_output, leaf, parallel
from convtool._jit.chunks import claim
from convtool._jit.integer import output_shape
from convtool._jit.rows import fill, fill2


@leaf
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


@leaf
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


@leaf
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


@leaf
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


@leaf
def _fft_forward(re, im, ret, imt, c0, s0, c1, s1):
    """2-D forward transform of (n0, n1) ``re + i·im`` into (n1, n0) ``ret + i·imt`` (the
    spectrum transposed, both axes bit-reversed). ``re``, ``im`` are overwritten."""
    _fft_dif(re, im, c0, s0, -1.0)
    _transpose(re, ret)
    _transpose(im, imt)
    _fft_dif(ret, imt, c1, s1, -1.0)


@leaf
def _fft_inverse(ret, imt, re, im, c0, s0, c1, s1):
    """2-D inverse (unscaled) of a spectrum laid out as ``_fft_forward`` leaves it."""
    _fft_dit(ret, imt, c1, s1, 1.0)
    _transpose(ret, re)
    _transpose(imt, im)
    _fft_dit(re, im, c0, s0, 1.0)


@leaf
def fft_kernel_spectrum(kern, scale, spectrum):
    """``spectrum.kre + i·spectrum.kim`` (n1, n0) = scale · the conjugate spectrum of ``kern``
    zero-padded to n0 × n1, laid out as ``_fft_forward`` leaves a spectrum (``spectrum`` a
    ``bundles.Spectrum``, its twiddle tables filled)."""
    kre, kim, c0, s0, c1, s1 = spectrum
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


@leaf
def _fft_gather(src, channels, extension, plane, t0, t1, across, dst):
    """The input window of ``plane`` (tile·C + channel) into ``dst`` (n0, n1), zero around it:
    window row r, column c read ``src[rmap[y0 + r], cmap[x0 + c]·C + ch]`` (−1: cval)."""
    rmap, cmap, cval = extension
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
            fill(d[:cols], cval)
        elif inside:
            row = src[sr, first * channels + ch : (first + cols) * channels : channels]
            for c in range(cols):
                d[c] = row[c]
        else:
            row = src[sr]
            for c in range(cols):
                sc = cmap[x0 + c]
                d[c] = cval if sc < 0 else row[sc * channels + ch]
        fill(d[cols:], 0)
    fill2(dst[rows:], 0)


def _fft_scatter(acc, channels, plane, t0, t1, across, output):
    """The tile of ``plane`` from ``acc`` into ``out`` (or, converted, ``iout``)."""
    raise NotImplementedError("only called from jitted code")


def _fft_scatter_float(acc, channels, plane, t0, t1, across, output):
    _fft_scatter_to_float(acc, channels, plane, t0, t1, across, output.out)


def _fft_scatter_int(acc, channels, plane, t0, t1, across, output):
    bias, absolute, top = output.bias, output.absolute, output.top
    _fft_scatter_to_int(acc, channels, plane, t0, t1, across, output.iout, bias, absolute, top)


@leaf
def _fft_scatter_to_float(acc, channels, plane, t0, t1, across, out):
    tile = plane // channels
    y0 = (tile // across) * t0
    x0 = (tile % across) * t1
    for r in range(min(t0, out.shape[0] - y0)):
        s = acc[r]
        o = out[y0 + r, x0 * channels + plane % channels :]
        for c in range(min(t1, out.shape[1] // channels - x0)):
            o[c * channels] = s[c]


@leaf
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


by_output(_fft_scatter, _fft_scatter_float, _fft_scatter_int)


@parallel
def correlate_fft(src, channels, extension, spectrum, t0, t1, nchunks, output):
    """FFT correlation of ``src`` (H, W·C) into ``output`` (Ho, Wo·C); see the module's text.

    ``extension`` (a ``bundles.Extension``) gives the source row and column of every position
    of the extended image (Ho + kh − 1 and Wo + kw − 1 of them, −1 for cval); ``spectrum``
    holds the kernel's spectrum from ``fft_kernel_spectrum``, scaled by 1/(n0·n1). ``output``
    as in ``direct_rows``. Tiles are t0 × t1; pairs of planes are cut into ``nchunks``.
    """
    n0 = spectrum.c0.shape[0]
    n1 = spectrum.c1.shape[0]
    dtype = spectrum.kre.dtype
    ho, no = output_shape(output)
    wo = no // channels
    across = (wo + t1 - 1) // t1
    planes = (ho + t0 - 1) // t0 * across * channels
    pairs = (planes + 1) // 2
    step = (pairs + nchunks - 1) // nchunks
    claimed = np.zeros(1, np.int64)
    for _ in nb.prange(nchunks):  # chunks claimed as threads become free (``chunks``)
        t = claim(claimed)
        if t >= nchunks:
            continue
        re = np.empty((n0, n1), dtype)
        im = np.empty((n0, n1), dtype)
        ret = np.empty((n1, n0), dtype)
        imt = np.empty((n1, n0), dtype)
        while t < nchunks:
            _fft_pairs(
                src, channels, extension, spectrum, t0, t1, across, planes, 2 * t * step,
                min(planes, 2 * (t * step + step)), re, im, ret, imt, output,
            )  # fmt: skip
            t = claim(claimed)


@leaf
def _fft_pairs(src, channels, extension, spectrum, t0, t1, across, planes, p0, p1, re, im, ret,
               imt, output):  # fmt: skip
    """Planes [p0, p1) of ``correlate_fft``, two at a time, in the buffers given."""
    kre, kim, c0, s0, c1, s1 = spectrum
    n0 = c0.shape[0]
    n1 = c1.shape[0]
    for p in range(p0, p1, 2):
        _fft_gather(src, channels, extension, p, t0, t1, across, re)
        if p + 1 < planes:
            _fft_gather(src, channels, extension, p + 1, t0, t1, across, im)
        else:
            fill2(im, 0)
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
        _fft_scatter(re, channels, p, t0, t1, across, output)
        if p + 1 < planes:
            _fft_scatter(im, channels, p + 1, t0, t1, across, output)
