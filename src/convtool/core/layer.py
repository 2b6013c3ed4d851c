"""Applying per-channel kernels and layers: out[o] = Σ_i corr(x[i], K[o, i]) + b[o].

The semantics of ``torch.nn.functional.conv2d`` (cross-correlation, a bias per output channel),
with convtool's border modes. Each (o, i) pair takes the path it is cheapest on: pairs whose
kernel is zero are skipped (the off-diagonal pairs of per-channel kernels); large separable
kernels, and kernels the FFT beats, go through the core's own paths, a plane at a time; the
rest are summed together in one jitted pass (``_jit.layer``), parallel over bands of rows and
groups of output channels, which reads every input row once for all outputs.
"""

from __future__ import annotations

import numpy as np

from convtool import compiled
from convtool.bundles import Border, Geometry, LayerTaps
from convtool.choices import BORDER_CODES, METHODS
from convtool.core.borders import check_border, check_cval, check_fits, output_shape
from convtool.core.correlate import as_image_array, correlate
from convtool.core.dispatch import (
    NUMPY_WORK,
    choose_method,
    fft_is_faster,
    separable_factors,
)
from convtool.core.paths import thread_scope
from convtool.errors import KernelError, UsageError
from convtool.kernels.layer import Layer
from convtool.kernels.spec import load_any_kernel
from convtool.twins.borders import extend_index

LayerLike = Layer | np.ndarray | str


def correlate_layer(
    image: np.ndarray,
    layer: LayerLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Apply per-channel kernels or a layer to ``image``: ``out[o] = Σ_i corr(x[i], K[o, i])
    + b[o]``, as ``torch.nn.functional.conv2d`` (cross-correlation) with ``border``'s extension.

    ``layer`` is a :class:`~convtool.kernels.layer.Layer` (its bias is added), a (C, kh, kw) or
    (C_out, C_in, kh, kw) array (no bias), or a spec naming such a file (``"@k.txt"``).
    ``image`` is (H, W) (one channel) or (H, W, C_in), typed as for
    :func:`~convtool.core.correlate.correlate`; its channel count must be the layer's inputs.
    The result is (H, W, C_out) — (H, W) for a 2-D image and one output — float32, or float64
    for a float64 image; ``border="valid"`` shrinks it as ``correlate`` does. ``method`` as in
    ``correlate``, per pair: ``auto`` picks the cheapest path for each (o, i).

    >>> x = np.dstack([np.ones((2, 3)), 2 * np.ones((2, 3))])
    >>> correlate_layer(x, Layer([[[[1.0]], [[10.0]]]], [0.5]))[..., 0]
    array([[21.5, 21.5, 21.5],
           [21.5, 21.5, 21.5]], dtype=float32)
    """
    return _apply(image, as_layer(layer), border, cval, method, threads)


def convolve_layer(
    image: np.ndarray,
    layer: LayerLike,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """:func:`correlate_layer` with every K[o, i] flipped (``K[..., ::-1, ::-1]``)."""
    return _apply(image, as_layer(layer).flipped(), border, cval, method, threads)


def as_layer(layer: object) -> Layer:
    """``layer`` as a :class:`Layer`: a Layer, an array of 3 or 4 dimensions, or a spec."""
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, str):
        loaded = load_any_kernel(layer)
        if not isinstance(loaded, Layer):
            raise KernelError(
                f"kernel {layer!r} is one 2-D kernel, not per-channel kernels or a layer; "
                "apply it with correlate"
            )
        return loaded
    return Layer(np.asarray(layer))


def check_channels(layer: Layer, channels: int, what: str = "the image") -> None:
    """A KernelError unless ``layer`` takes ``channels`` input channels, naming both."""
    if layer.inputs != channels:
        raise KernelError(
            f"{layer.describe()} takes {layer.inputs} input channel"
            f"{'s' if layer.inputs != 1 else ''}; {what} has {channels}: use a layer with "
            f"{channels} input{'s' if channels != 1 else ''}, or an image with {layer.inputs}"
        )


def _apply(
    image: object, layer: Layer, border: str, cval: float, method: str, threads: int | None
) -> np.ndarray:
    check_border(border)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cval = check_cval(cval)
    x = as_image_array(image)
    flat = x.ndim == 2
    x3 = x[..., np.newaxis] if flat else x
    check_channels(layer, x3.shape[2], f"the image (shape {x.shape})")
    check_fits(layer.shape, x3.shape[:2], border)
    out_dtype = np.float64 if x.dtype == np.float64 else np.float32
    ho, wo = output_shape(x3.shape[:2], layer.shape, border)
    out = np.empty((ho, wo, layer.outputs), out_dtype)
    pairs = _pairs(layer)
    work = float(ho * wo) * sum(int(np.count_nonzero(layer.kernel(o, i))) for o, i in pairs)
    if method == "auto" and threads is None and work <= NUMPY_WORK:
        core_pairs = pairs  # small: numpy, a pair at a time (no numba loaded)
        out[...] = layer.biases.astype(out_dtype)
    else:
        core_pairs = [p for p in pairs if _core_path(layer.kernel(*p), x3.shape, method)]
        direct = [p for p in pairs if p not in core_pairs]
        _direct(x3, layer, direct, border, cval, threads, out)
    planes: dict[int, np.ndarray] = {}
    for o, i in core_pairs:
        if i not in planes:
            planes[i] = np.ascontiguousarray(x3[..., i])
        part = correlate(
            planes[i], layer.kernel(o, i), border=border, cval=cval, method=method,
            threads=threads,
        )  # fmt: skip
        out[..., o] += part
    return out[..., 0] if flat and layer.outputs == 1 else out


def _pairs(layer: Layer) -> list[tuple[int, int]]:
    """The (o, i) pairs whose kernel is not all zeros."""
    return [
        (o, i)
        for o in range(layer.outputs)
        for i in range(layer.inputs)
        if np.any(layer.kernel(o, i))
    ]


def _core_path(weights: np.ndarray, shape: tuple[int, ...], method: str) -> bool:
    """Whether a pair is done apart, through the core's separable or FFT path: when asked
    for, or (``auto``) when the separable path saves more than half the taps or the FFT is
    expected to be faster; the direct pairs share one pass over the input."""
    kh, kw = weights.shape
    if method in ("separable", "fft"):
        return True
    if method == "direct":
        return False
    plane = shape[:2]
    separable = choose_method(plane, (kh, kw), method) == "separable"
    if separable and kh + kw < kh * kw / 2 and separable_factors(weights) is not None:
        return True
    return fft_is_faster(plane, (kh, kw))


def _direct(
    x: np.ndarray,
    layer: Layer,
    pairs: list[tuple[int, int]],
    border: str,
    cval: float,
    threads: int | None,
    out: np.ndarray,
) -> None:
    """Bias plus the ``pairs`` summed in one jitted pass into ``out`` (every output channel
    written, with its bias alone where it has no pairs)."""
    out_dtype = out.dtype.type
    h, w, channels = x.shape
    kh, kw = layer.shape
    ho, wo = out.shape[:2]
    tj: list[np.ndarray] = []
    tb: list[np.ndarray] = []
    tw: list[np.ndarray] = []
    starts = [0]
    for o in range(layer.outputs):
        rows, cols, weights = [], [], []
        for i in range(channels):
            if (o, i) in pairs:
                a, b = np.nonzero(layer.kernel(o, i))
                rows.append(i * kh + a)
                cols.append(b)
                weights.append(layer.kernel(o, i)[a, b])
        j = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        v = np.concatenate(weights) if weights else np.zeros(0)
        extra = -len(j) % 8 if len(j) else 8  # padded: repeat the last read, weigh it 0
        tj.append(np.concatenate([j, np.full(extra, j[-1] if len(j) else 0)]))
        tb.append(np.concatenate([c, np.full(extra, c[-1] if len(c) else 0)]))
        tw.append(np.concatenate([v, np.zeros(extra)]))
        starts.append(starts[-1] + len(tj[-1]))
    if border == "valid":
        ph = pw = mode = 0
        cmap = np.arange(wo + kw - 1, dtype=np.int64)
    else:
        ph, pw, mode = kh // 2, kw // 2, BORDER_CODES[border]
        cmap = extend_index(w, -pw, wo + kw - 1, mode)
    taps = LayerTaps(
        np.concatenate(tj).astype(np.int64),
        np.concatenate(tb).astype(np.int64),
        np.concatenate(tw).astype(out_dtype),
        np.array(starts, np.int64),
        layer.biases.astype(out_dtype),
        cmap.astype(np.int64),
    )
    with thread_scope(threads) as count:
        nchunks = max(1, min(ho, 4 * count))
        ngroups = max(1, min(layer.outputs, -(-4 * count // nchunks)))
        args = (
            x.reshape(h, w * channels),
            Geometry(channels, kh, kw, ph, pw),
            Border(mode, out_dtype(cval)),
            taps,
            layer.outputs,
            nchunks,
            ngroups,
            out.reshape(ho, wo * layer.outputs),
        )
        compiled.call("correlate_layer", args)
