"""Cross-correlation and convolution of arrays: border modes, validation and dispatch.

Border modes use scipy.ndimage's names and definitions (beware: ``numpy.pad`` calls them
differently)::

    reflect   d c b a | a b c d | d c b a     (scipy's default; numpy.pad 'symmetric')
    mirror    d c b   | a b c d | c b a       (OpenCV's BORDER_REFLECT_101; numpy.pad 'reflect')
    nearest   a a a   | a b c d | d d d       (ImageMagick's virtual-pixel Edge; numpy.pad 'edge')
    wrap      b c d   | a b c d | a b c
    constant  k k k   | a b c d | k k k       (k = cval)
    valid     no extension; the output shrinks to (H − kh + 1) × (W − kw + 1)

numba is imported on first use, not with this module, so ``convtool --help`` starts fast.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from convtool.errors import ImageError, KernelError, UsageError
from convtool.kernels import Kernel, load_kernel, validate_weights

Border = Literal["reflect", "mirror", "nearest", "wrap", "constant", "valid"]
BORDER_CODES = {"reflect": 0, "mirror": 1, "nearest": 2, "wrap": 3, "constant": 4}
BORDERS: tuple[str, ...] = (*BORDER_CODES, "valid")
METHODS = ("auto", "direct", "separable")

SEPARABLE_RTOL = 1e-13
"""A kernel is applied as two 1-D passes when ``max|K − u vᵀ| ≤ SEPARABLE_RTOL · max|K|``."""

KernelLike = Kernel | np.ndarray | str | list[list[float]]


def correlate(
    image: np.ndarray,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Cross-correlate ``image`` with ``kernel`` (no flip), as the textbook's ``corr2d``.

    ``out[i, j] = Σ_a Σ_b K[a, b] · X̃[i + a − kh//2, j + b − kw//2]``, X̃ being ``image``
    extended by ``border``; this equals ``scipy.ndimage.correlate(image, K, mode=border,
    cval=cval)`` channel by channel. With ``border="valid"`` nothing is padded and
    ``out[i, j] = Σ K[a, b] · X[i + a, j + b]`` has shape (H − kh + 1, W − kw + 1).

    ``image`` is (H, W) or (H, W, C), uint8, uint16, float32 or float64 (other integer and
    float types are converted); every channel gets the same 2-D kernel, and values are taken as
    they are, unscaled. The result is float32, or float64 for a float64 image. ``kernel`` is an
    array, a :class:`~convtool.kernels.Kernel` or a spec string; a kernel's bias is *not* added
    here. ``method`` picks ``direct`` or ``separable`` (rank-1 kernels as two 1-D passes);
    ``auto`` chooses. ``threads`` limits the parallel core (default: all cores).

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> correlate(x, [[0, 1], [2, 3]], border="valid")
    array([[19., 25.],
           [37., 43.]])
    """
    weights = _weights(kernel)
    return _correlate(image, weights, border, cval, method, threads)


def convolve(
    image: np.ndarray,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Convolve: correlate with the kernel flipped in both axes, ``K[::-1, ::-1]``.

    This is the textbook's definition of convolution. The flipped kernel is anchored at
    ``kh//2, kw//2`` like any other, so for even-sized kernels the result is shifted by one
    pixel against ``scipy.ndimage.convolve`` (which anchors the unflipped centre); with
    ``border="valid"`` and with odd sizes the two agree.

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> convolve(x, [[3, 2], [1, 0]], border="valid")
    array([[19., 25.],
           [37., 43.]])
    """
    weights = _weights(kernel)
    return _correlate(image, weights[::-1, ::-1], border, cval, method, threads)


def _weights(kernel: KernelLike) -> np.ndarray:
    if isinstance(kernel, Kernel):
        return kernel.weights
    if isinstance(kernel, str):
        return load_kernel(kernel).weights
    return validate_weights(kernel)


def as_image_array(image: object) -> np.ndarray:
    """``image`` as a C-contiguous 2-D or 3-D array of uint8, uint16, float32 or float64."""
    x = np.asarray(image)
    if x.ndim not in (2, 3):
        raise ImageError(
            f"image has {x.ndim} dimensions, shape {x.shape}; expected (H, W) or (H, W, C)"
        )
    if x.shape[0] == 0 or x.shape[1] == 0 or (x.ndim == 3 and x.shape[2] == 0):
        raise ImageError(f"image is empty (shape {x.shape}); it needs at least one pixel")
    kind = x.dtype.kind
    if x.dtype in (np.uint8, np.uint16, np.float32, np.float64):
        pass
    elif kind == "b":
        x = x.astype(np.uint8)
    elif kind in "iu":
        x = x.astype(np.float64)
    elif kind == "f":
        x = x.astype(np.float32 if x.dtype.itemsize < 4 else np.float64)
    else:
        raise ImageError(f"image has dtype {x.dtype}; expected numbers (uint8, uint16, float)")
    return np.ascontiguousarray(x)


def output_shape(shape: tuple[int, ...], kshape: tuple[int, int], border: str) -> tuple[int, ...]:
    """The shape ``correlate`` returns for an image of ``shape`` and a kernel of ``kshape``."""
    if border != "valid":
        return tuple(shape)
    return (shape[0] - kshape[0] + 1, shape[1] - kshape[1] + 1, *shape[2:])


def check_border(border: str) -> str:
    if border not in BORDERS:
        raise UsageError(f"unknown border {border!r}; choose one of {', '.join(BORDERS)}")
    return border


def separable_factors(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(u, v) with ``K = u vᵀ`` when the kernel has rank 1 within rounding, else None.

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
    if np.max(np.abs(k - np.outer(u, v))) > SEPARABLE_RTOL * abs(pivot):
        return None
    return u, v


def _correlate(
    image: object,
    weights: np.ndarray,
    border: str,
    cval: float,
    method: str,
    threads: int | None,
) -> np.ndarray:
    check_border(border)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    x = as_image_array(image)
    kh, kw = weights.shape
    h, w = x.shape[:2]
    if border == "valid" and (kh > h or kw > w):
        raise KernelError(
            f"kernel {kh}x{kw} is larger than the {h}x{w} image; border 'valid' needs a kernel "
            "no larger than the image: use a smaller kernel or a padding border such as 'reflect'"
        )
    cval = float(cval)
    if not np.isfinite(cval):
        raise UsageError(f"cval {cval!r} must be a finite number")
    out_dtype = np.float64 if x.dtype == np.float64 else np.float32
    factors = None
    if method == "separable" or (method == "auto" and kh * kw > 9 and kh > 1 and kw > 1):
        factors = separable_factors(weights)
        if factors is None and method == "separable":
            raise KernelError(f"the {kh}x{kw} kernel is not separable (its rank is above 1)")
    with _threads(threads):
        if factors is not None:
            u, v = factors
            rows = _pass(x, v[np.newaxis, :], border, cval, out_dtype)
            return _pass(rows, u[:, np.newaxis], border, cval * float(v.sum()), out_dtype)
        return _pass(x, weights, border, cval, out_dtype)


def _pass(
    x: np.ndarray, weights: np.ndarray, border: str, cval: float, out_dtype: type
) -> np.ndarray:
    from convtool import _jit

    channels = x.shape[2] if x.ndim == 3 else 1
    h, w = x.shape[:2]
    src = x.reshape(h, w * channels)
    k: np.ndarray = np.ascontiguousarray(weights, dtype=out_dtype)
    shape = output_shape(x.shape, k.shape, border)
    out: np.ndarray = np.empty(shape, dtype=out_dtype)
    flat = out.reshape(shape[0], shape[1] * channels)
    if border == "valid":
        _jit.correlate_valid(src, channels, k, flat)
    else:
        import numba

        nchunks = min(h, 4 * numba.get_num_threads())
        _jit.correlate_same(src, channels, k, BORDER_CODES[border], out_dtype(cval), flat, nchunks)
    return out


class _threads:
    """Context manager: run the parallel core on ``n`` threads, then restore the previous count."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.previous: int | None = None

    def __enter__(self) -> None:
        if self.n is None:
            return
        import numba

        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        if not 1 <= self.n <= most:
            raise UsageError(
                f"threads must be between 1 and {most} (the cores numba may use); got {self.n}"
            )
        self.previous = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            import numba

            numba.set_num_threads(self.previous)
