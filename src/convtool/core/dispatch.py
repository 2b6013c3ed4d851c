"""Which path a correlation takes: separability, the cost model, and the numpy threshold."""

from __future__ import annotations

import numpy as np

SEPARABLE_ULPS = 4
"""A kernel is applied as two 1-D passes when ``Σ|K − u vᵀ| ≤ SEPARABLE_ULPS · ε · Σ|K|``, ε
being the machine epsilon of ``filtering_precision``: the two passes then differ from the sums
of K by at most that fraction of Σ|K|·max|X|, within the rounding of the type the image is
filtered in (a Gaussian rounded to float32 is rank 1 within a few of its own roundings)."""


def filtering_precision(image_dtype: np.dtype | type, weights: np.ndarray) -> type:
    """The float type whose rounding judges rank 1: float32 for an image filtered in float32
    (uint8, uint16 and float32 images), float64 for a float64 one; float32 as well when every
    weight is a float32 value (a kernel saved as float32, e.g. ``.npy``), whose own rounding
    the two passes then stay within."""
    if np.dtype(image_dtype) != np.float64:
        return np.float32
    k = np.asarray(weights, dtype=np.float64)
    with np.errstate(over="ignore"):
        stored32 = bool(np.all(k.astype(np.float32) == k))
    return np.float32 if stored32 else np.float64


def separable_factors(
    weights: np.ndarray, precision: type = np.float64
) -> tuple[np.ndarray, np.ndarray] | None:
    """(u, v) with ``K = u vᵀ`` when the kernel has rank 1 within the rounding of ``precision``
    (see ``SEPARABLE_ULPS``), else None.

    The factors are a column and a scaled row of K itself, so integer kernels (Sobel, box)
    factor exactly.
    """
    k = np.asarray(weights, dtype=np.float64)
    p, q = np.unravel_index(int(np.argmax(np.abs(k))), k.shape)
    pivot = k[p, q]
    if pivot == 0:
        return None
    u = k[:, q].copy()
    v = k[p, :] / pivot
    eps = float(np.finfo(precision).eps)
    if np.abs(k - np.outer(u, v)).sum() > SEPARABLE_ULPS * eps * np.abs(k).sum():
        return None
    return u, v


def choose_method(shape: tuple[int, ...], kshape: tuple[int, int], method: str) -> str:
    """The path ``method="auto"`` takes: ``separable`` for rank-1 kernels larger than 3×3 (the
    caller falls back when the kernel is not), then ``fft`` where the cost model expects it to
    be faster than ``direct``. ``method="nonseparable"`` is the choice after that fallback."""
    if method in ("direct", "separable", "fft"):
        return method
    kh, kw = kshape
    if method == "auto" and kh * kw > 9 and kh > 1 and kw > 1:
        return "separable"
    return "fft" if fft_is_faster(shape, kshape) else "direct"


DIRECT_TAPS_PER_SECOND = 3.2e10
"""Cost model, direct path: multiply-adds per second per thread; a little below what a large
kernel reaches, since smaller ones use the vector units less fully."""

FFT_SECONDS_PER_POINT = 1.0e-9
"""Cost model, FFT path: seconds per point of a complex plane and per log2 of its area, per
thread, for gathering, both transforms, the product and scattering."""


NUMPY_WORK = 2e7
"""Cost model, numpy path: ``method="auto"`` (with no ``threads``) filters with numpy when the
call's work, output values × nonzero taps, is at most this many multiply-adds, whether or not
numba is loaded: below it numpy finishes before numba would have been imported and its cache
loaded, so a command that filters a few small pictures never loads numba. The choice is the
call's alone: the same call gives the same bytes in a fresh process, in a batch and after numba
has been loaded."""


def fft_is_faster(shape: tuple[int, ...], kshape: tuple[int, int]) -> bool:
    """Whether the FFT path is expected to beat the direct one for this image and kernel (both
    run on all threads, so their count cancels out)."""
    kh, kw = kshape
    if kh * kw < 64:
        return False
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    direct = h * w * channels * kh * kw / DIRECT_TAPS_PER_SECOND
    (n0, n1), (t0, t1) = fft_tiles(h, w, kh, kw)
    pairs = (-(-h // t0) * -(-w // t1) * channels + 1) // 2
    fft = pairs * n0 * n1 * np.log2(n0 * n1) * FFT_SECONDS_PER_POINT
    return bool(fft < direct)


def numpy_takes(shape: tuple[int, ...], weights: np.ndarray) -> bool:
    """Whether ``method="auto"`` does an output of ``shape`` with numpy (``NUMPY_WORK``)."""
    return float(np.prod(shape)) * int(np.count_nonzero(weights)) <= NUMPY_WORK


def pow2(n: int) -> int:
    """The smallest power of two ≥ ``n`` (1 for ``n`` ≤ 1)."""
    return 1 << max(0, int(n) - 1).bit_length()


def fft_tiles(h: int, w: int, kh: int, kw: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Transform size (n0, n1) and output tile (t0, t1) of the FFT path for an output of h × w:
    powers of two about 8 × (kernel side − 1) (at least 16: 256 for 31×31), or the whole
    extended image along an axis where that is smaller (at least 8)."""
    sizes = []
    for n, k in ((h, kh), (w, kw)):
        tile = max(16, pow2(8 * (k - 1)))
        sizes.append(max(8, min(tile, pow2(n + k - 1))))
    n0, n1 = sizes
    return (n0, n1), (n0 - kh + 1, n1 - kw + 1)
