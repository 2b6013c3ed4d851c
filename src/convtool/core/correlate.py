"""Cross-correlation and convolution of arrays: border modes, validation and dispatch.

Border modes use scipy.ndimage's names and definitions (beware: ``numpy.pad`` calls them
differently)::

    reflect   d c b a | a b c d | d c b a     (scipy's default; numpy.pad 'symmetric')
    mirror    d c b   | a b c d | c b a       (OpenCV's BORDER_REFLECT_101; numpy.pad 'reflect')
    nearest   a a a   | a b c d | d d d       (ImageMagick's virtual-pixel Edge; numpy.pad 'edge')
    wrap      b c d   | a b c d | a b c
    constant  k k k   | a b c d | k k k       (k = cval)
    valid     no extension; the output shrinks to (H − kh + 1) × (W − kw + 1)

numba is imported on first use, not with this module, so ``convtool --help`` starts fast. With
``method="auto"`` a call whose work is small (``NUMPY_WORK``) is done with numpy instead, so that
a command filtering one small picture never loads numba; the choice depends on the call alone,
never on what the process did before, so the same call always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np
from numpy.typing import DTypeLike

from convtool.choices import INTEGER_MAPS, METHODS
from convtool.core.borders import check_border, check_cval, check_fits, output_shape
from convtool.core.paths import IntegerOutput, Task, run_path
from convtool.errors import ImageError, KernelError, UsageError
from convtool.kernels.origin import Origin, at_origin, check_origin, check_valid_origin
from convtool.kernels.spec import load_kernel
from convtool.kernels.value import Kernel, validate_weights

KernelLike = Kernel | np.ndarray | str | list[list[float]]

INTEGER_OUTPUTS = (np.dtype(np.uint8), np.dtype(np.uint16))
"""The integer types ``output=`` takes: the result rounded half to even and clipped."""


def correlate(
    image: np.ndarray,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
    output: np.ndarray | DTypeLike | None = None,
    origin: int | tuple[int, int] | None = None,
    **scipy_keywords: object,
) -> np.ndarray:
    """Cross-correlate ``image`` with ``kernel`` (no flip), as the textbook's ``corr2d``.

    ``out[i, j] = Σ_a Σ_b K[a, b] · X̃[i + a − kh//2, j + b − kw//2]``, X̃ being ``image``
    extended by ``border``; this equals ``scipy.ndimage.correlate(image, K, mode=border,
    cval=cval)`` channel by channel. With ``border="valid"`` nothing is padded and
    ``out[i, j] = Σ K[a, b] · X[i + a, j + b]`` has shape (H − kh + 1, W − kw + 1).

    ``image`` is (H, W) or (H, W, C), uint8, uint16, float32 or float64 (other integer and
    float types are converted); every channel gets the same 2-D kernel, and values are taken as
    they are, unscaled. The result is float32, or float64 for a float64 image. ``kernel`` is an
    array, a :class:`~convtool.kernels.value.Kernel` or a spec string; a kernel's bias is *not*
    added here. ``method`` picks the algorithm, never the result: ``direct`` (sums of taps),
    ``separable`` (rank-1 kernels as two 1-D passes fused in one sweep; rank 1 within the
    rounding of the precision filtered in, see
    :func:`~convtool.core.dispatch.separable_factors`), ``fft`` (FFTs of
    overlap-save tiles: equal to ``direct`` within 1e-4 of Σ|K|·max|X| in float32, within
    rounding in float64, every border mode included); ``auto`` takes ``separable`` for rank-1
    kernels larger than 3×3, otherwise ``fft`` where :func:`~convtool.core.dispatch.fft_is_faster`
    expects it, and does a call of at most :data:`~convtool.core.dispatch.NUMPY_WORK`
    multiply-adds with numpy (shifted views, no numba).
    ``threads`` limits the numba core (default: all cores) and asks for it even for small work;
    the result does not depend on the count.

    ``output``, as in scipy.ndimage, is the result's dtype or an array to write it into
    (returned itself: a loop over frames can reuse one instead of new memory every call, and
    touching fresh pages costs a pass over the result). ``np.uint8`` or ``np.uint16`` (a dtype,
    or an array of one) gives integers in the same pass: the float result rounded half to even
    and clipped to the type's range, exactly ``np.clip(np.rint(correlate(image, kernel)), 0,
    255).astype(np.uint8)`` (OpenCV's ``saturate_cast``; scipy truncates and wraps around
    instead). An array must be writeable, C-contiguous, of exactly the result's shape and of
    its float dtype or uint8 / uint16, sharing no memory with ``image``.

    ``origin``, as in scipy.ndimage, moves the anchor from cell ``(kh//2, kw//2)`` to
    ``(kh//2 + dy, kw//2 + dx)`` (an integer moves both); ``-(k//2) ≤ o ≤ (k−1)//2``.
    An empty image gives an empty result; a 1-D kernel is refused (scipy refuses it too).

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> correlate(x, [[0, 1], [2, 3]], border="valid")
    array([[19., 25.],
           [37., 43.]])
    >>> correlate(np.array([[3, 5, 200]], np.uint8), [[0.5, 1.0]], border="valid", output=np.uint8)
    array([[ 6, 202]], dtype=uint8)
    """
    refuse_scipy_keywords("correlate", scipy_keywords)
    weights = kernel_weights(kernel)
    if origin is not None:
        weights = anchored(weights, check_origin(origin), border)
    return _correlate(image, weights, border, cval, method, threads, output)


def convolve(
    image: np.ndarray,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
    output: np.ndarray | DTypeLike | None = None,
    origin: int | tuple[int, int] | None = None,
    **scipy_keywords: object,
) -> np.ndarray:
    """Convolve: correlate with the kernel flipped in both axes, ``K[::-1, ::-1]``.

    This is the textbook's definition of convolution. The flipped kernel is anchored at
    ``kh//2, kw//2`` like any other, so for even-sized kernels the result is shifted by one
    pixel against ``scipy.ndimage.convolve`` (which anchors the unflipped centre); with
    ``border="valid"`` and with odd sizes the two agree. Given an ``origin`` (even ``(0, 0)``),
    the result is scipy's ``convolve(image, K, origin=origin)`` for every size: the
    mathematical convolution about cell ``(kh//2 + dy, kw//2 + dx)``; without one, an even
    side behaves as scipy's origin −1. Other arguments as :func:`correlate`.

    >>> x = np.arange(9.0).reshape(3, 3)
    >>> convolve(x, [[3, 2], [1, 0]], border="valid")
    array([[19., 25.],
           [37., 43.]])
    """
    refuse_scipy_keywords("convolve", scipy_keywords)
    weights = kernel_weights(kernel)
    if origin is not None:
        weights = anchored(weights, check_origin(origin), border, always=True)
    return _correlate(image, weights[::-1, ::-1], border, cval, method, threads, output)


def anchored(weights: np.ndarray, origin: Origin, border: str, always: bool = False) -> np.ndarray:
    """The weights padded so that their centre is the origin's cell (see kernels.origin);
    ``always`` pads also for a zero origin (convolve: scipy's anchor for even sides)."""
    if border == "valid":
        check_valid_origin(origin)
        return weights
    if origin == (0, 0) and not always:
        return weights
    return at_origin(weights, origin)


SCIPY_KEYWORDS = {
    "mode": "convtool calls scipy's mode= border= (the same names: border='reflect', "
    "'mirror', 'nearest', 'wrap', 'constant', plus 'valid')",
    "weights": "pass the kernel as the second argument (convtool calls it kernel=)",
    "input": "pass the image as the first argument (convtool calls it image=)",
    "axes": "convtool filters the first two axes, each channel of (H, W, C) alike",
}
"""scipy.ndimage keywords convtool spells otherwise, and what to write instead."""


def refuse_scipy_keywords(function: str, keywords: dict[str, object]) -> None:
    """A UsageError for keywords ``function`` does not take, saying what to write instead."""
    if not keywords:
        return
    name = next(iter(keywords))
    advice = SCIPY_KEYWORDS.get(
        name, "its keywords are border=, cval=, method=, threads=, output= and origin="
    )
    raise UsageError(f"{function}() takes no keyword {name}=; {advice}")


def correlate_to_integer(
    image: np.ndarray,
    kernel: KernelLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    scale: float = 1.0,
    bias: float = 0.0,
    map: str = "clip",
    in_max: float | None = None,
    out_max: int | None = None,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Correlate and write integer pixels in the same pass (private to convtool's image layer).

    With X the image (H, W[, C]) and ⋆ the correlation of :func:`correlate` (same ``border``,
    ``cval`` and ``method``; ``cval`` is in the image's own units, like X)::

        y   = scale · ((X / in_max) ⋆ K) + bias       images are taken as [0, 1] values
        y   = |y|                                     only when map == "abs"
        out = min(max(rint(y · out_max), 0), out_max)

    ``rint`` rounds half to even, as ``numpy.rint`` does (2.5 → 2, 3.5 → 4). ``in_max``
    defaults to 255 for uint8, 65535 for uint16 and 1 for float images; ``out_max`` defaults
    to 255 for uint8 and float images and 65535 for uint16 ones, and must be an integer in
    [1, 65535]. The result is uint8 when ``out_max`` ≤ 255, else uint16, with the image's shape
    (or the valid shape). ``kernel`` is taken as :func:`correlate` takes it; a bias it carries is
    *not* added (pass it as ``bias``).

    The factors are folded into the kernel and the sum is formed in float32 (float64 images are
    converted to float32 first): a value within float32 rounding of a half-integer may round to
    the neighbouring level compared with the formula evaluated in float64 (with
    ``method="fft"``, a value within the transform's error, typically 1e-6 of the largest). The
    conversion runs in the parallel loop, fused into the write of each output row, instead of a
    float32 image followed by numpy's clip and round (two more passes over the result).

    >>> correlate_to_integer(np.array([[100, 200]], np.uint8), [[1, 1]], border="valid")
    array([[255]], dtype=uint8)
    >>> correlate_to_integer(np.array([[100, 200]], np.uint8), [[1, -1]], border="valid",
    ...                      map="abs")
    array([[100]], dtype=uint8)
    """
    weights = kernel_weights(kernel)
    if map not in INTEGER_MAPS:
        raise UsageError(f"unknown map {map!r}; choose one of {', '.join(INTEGER_MAPS)}")
    x, cval = _prepare(image, weights, border, cval, method)
    if x.dtype == np.float64:
        x = x.astype(np.float32)
    if in_max is None:
        in_max = float(np.iinfo(x.dtype).max) if x.dtype.kind == "u" else 1.0
    if out_max is None:
        out_max = 65535 if x.dtype == np.uint16 else 255
    for name, value in (("scale", scale), ("bias", bias), ("in_max", in_max)):
        if not np.isfinite(float(value)):
            raise UsageError(f"{name} {value!r} must be a finite number")
    if not float(in_max) > 0:
        raise UsageError(f"in_max must be positive (the value that means 1.0); got {in_max!r}")
    if not (float(out_max) == int(out_max) and 1 <= int(out_max) <= 65535):
        raise UsageError(f"out_max must be an integer from 1 to 65535; got {out_max!r}")
    top = int(out_max)
    factor = float(scale) * top / float(in_max)
    folded = np.asarray(weights, dtype=np.float64) * factor
    out = np.empty(
        output_shape(x.shape, weights.shape, border), np.uint8 if top <= 255 else np.uint16
    )
    integer = IntegerOutput(float(bias) * top, map == "abs", float(top))
    return run_path(Task(x, folded, border, cval, np.float32, out, integer), method, threads)


def kernel_weights(kernel: KernelLike) -> np.ndarray:
    """The 2-D float64 weights of a kernel, a spec or an array (a 1-D array is refused)."""
    if isinstance(kernel, Kernel):
        return kernel.weights
    if isinstance(kernel, str):
        return load_kernel(kernel).weights
    if isinstance(kernel, (np.ndarray, list, tuple)):
        with contextlib.suppress(TypeError, ValueError):
            _check_array_kernel(np.asarray(kernel))
    return validate_weights(kernel)


def _check_array_kernel(k: np.ndarray) -> None:
    if k.ndim == 1 and k.size:
        raise KernelError(
            f"kernel has 1 dimension, shape {k.shape}; a kernel is 2-D (as in scipy, which "
            "refuses it for a 2-D image): write k[None, :] for a row, k[:, None] for a column"
        )
    if k.dtype.kind == "c":
        raise KernelError(
            "kernel has complex entries; convtool takes real kernels. scipy.ndimage.correlate "
            "conjugates a complex kernel (convolve does not): its correlate(x, K) is "
            "correlate(x, K.real) - 1j * correlate(x, K.imag) here"
        )


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
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))  # big-endian data: the same type, native order
    if x.dtype in (np.uint8, np.uint16, np.float32, np.float64):
        pass
    elif kind == "b":
        x = x.astype(np.uint8)
    elif kind in "iu":
        x = x.astype(np.float64)
    elif kind == "f":
        x = x.astype(np.float32 if x.dtype.itemsize < 4 else np.float64)
    else:
        raise ImageError(
            f"image has dtype {x.dtype}; expected real numbers (uint8, uint16, float): for "
            "complex data filter the .real and .imag parts apart"
        )
    return writeable(np.ascontiguousarray(x))


def writeable(x: np.ndarray) -> np.ndarray:
    """``x``, or when it is read-only (``np.asarray`` of a Pillow image, a read-only memory
    map) a writeable alias of the same memory, which convtool never writes to: numba compiles
    its core again for read-only arrays (seconds on a cold cache), and a copy would cost a pass
    over the image."""
    if x.flags.writeable or x.size == 0:
        return x
    memory = (ctypes.c_char * x.nbytes).from_address(x.ctypes.data)
    memory.owner = x  # type: ignore[attr-defined]  # the alias keeps x alive through it
    return np.frombuffer(memoryview(memory), dtype=x.dtype).reshape(x.shape)


def _correlate(
    image: object,
    weights: np.ndarray,
    border: str,
    cval: float,
    method: str,
    threads: int | None,
    output: object,
) -> np.ndarray:
    empty = _empty_result(image, weights, border, method, output)
    if empty is not None:
        return empty
    x, cval = _prepare(image, weights, border, cval, method)
    compute = np.float64 if x.dtype == np.float64 else np.float32
    shape = output_shape(x.shape, weights.shape, border)
    out = _output(output, image, shape, np.dtype(compute))
    integer = None
    if out.dtype.kind == "u":
        integer = IntegerOutput(0.0, False, float(np.iinfo(out.dtype).max))
    return run_path(Task(x, weights, border, cval, compute, out, integer), method, threads)


def _empty_result(
    image: object, weights: np.ndarray, border: str, method: str, output: object
) -> np.ndarray | None:
    """The empty result of an empty image, as scipy.ndimage returns one; None otherwise."""
    if not isinstance(image, np.ndarray) or image.size or image.ndim not in (2, 3):
        return None
    check_border(border)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    check_fits(
        (int(weights.shape[0]), int(weights.shape[1])), (image.shape[0], image.shape[1]), border
    )
    dtype = np.float64 if image.dtype == np.float64 else np.float32
    return _output(output, image, output_shape(image.shape, weights.shape, border), np.dtype(dtype))


def _output(output: object, image: object, shape: tuple[int, ...], compute: np.dtype) -> np.ndarray:
    """The array the result goes into: new for ``None`` or a dtype, else ``output`` checked."""
    if output is None:
        return np.empty(shape, compute)
    if isinstance(output, np.ndarray):
        return _check_output(output, image, shape, compute)
    try:
        dtype = np.dtype(output)  # type: ignore[call-overload]
    except TypeError:
        raise UsageError(
            f"output must be a numpy array or a dtype; got {type(output).__name__} "
            f"{output!r}: pass np.{compute.name}, np.uint8 or np.uint16, or an array of one"
        ) from None
    if dtype != compute and dtype not in INTEGER_OUTPUTS:
        raise UsageError(
            f"output dtype {dtype} is not one this call writes: it computes in "
            f"{compute.name}; pass np.{compute.name}, or np.uint8 / np.uint16 for integers "
            "rounded half to even and clipped (convert other types from the result yourself)"
        )
    return np.empty(shape, dtype)


def _check_output(
    output: np.ndarray, image: object, shape: tuple[int, ...], compute: np.dtype
) -> np.ndarray:
    """``output`` if the result can be written into it as it is, else a ``UsageError``."""
    dtype = output.dtype if output.dtype in INTEGER_OUTPUTS else compute
    required = f"np.empty({shape}, np.{dtype.name})"
    if output.shape != shape or output.dtype != dtype:
        raise UsageError(
            f"output has shape {output.shape} and dtype {output.dtype}; this call returns shape "
            f"{shape} and dtype {compute.name} (or uint8 / uint16, rounded and clipped): pass "
            f"{required}"
        )
    if not output.flags.writeable:
        raise UsageError("output is read-only; pass a writeable array such as " + required)
    if not output.flags.c_contiguous:
        raise UsageError(
            "output is not C-contiguous (a strided view or a transposed array); pass a "
            f"contiguous array such as {required}, or copy the result into the view"
        )
    if isinstance(image, np.ndarray) and _overlap(output, image):
        raise UsageError(
            "output shares memory with the image; the result cannot overwrite its own input: "
            f"pass a separate array such as {required}"
        )
    return output


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` share memory (when that is too hard to decide: whether their
    extents overlap)."""
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=100_000))  # type: ignore[arg-type]
    except np.exceptions.TooHardError:
        return True


def _prepare(
    image: object, weights: np.ndarray, border: str, cval: float, method: str
) -> tuple[np.ndarray, float]:
    """Validated image array and cval; shared by ``correlate`` and ``correlate_to_integer``."""
    check_border(border)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    x = as_image_array(image)
    kh, kw = weights.shape
    h, w = x.shape[:2]
    check_fits((kh, kw), (h, w), border)
    return x, check_cval(cval)
