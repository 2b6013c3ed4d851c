"""Applying per-channel kernels and layers: out[o] = Σ_i corr(x[i], K[o, i]) + b[o].

The semantics of ``torch.nn.functional.conv2d`` (cross-correlation, a bias per output channel),
with convtool's border modes. Each (o, i) pair takes the path it is cheapest on: pairs whose
kernel is zero are skipped (the off-diagonal pairs of per-channel kernels); kernels the FFT
beats go through the core's FFT path, a plane at a time; the rest, as direct taps or (rank 1,
larger than 3×3, as the core decides) as two 1-D passes, are summed together in one jitted
pass (``_jit.layer``, its numpy twin ``twins.layer`` while numba's cache is cold), parallel
over bands of rows and groups of output channels, which reads every input row once for all
outputs.
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
    filtering_precision,
    separable_factors,
)
from convtool.core.paths import thread_scope
from convtool.errors import KernelError, UsageError
from convtool.kernels.layer import Layer
from convtool.kernels.spec import load_any_kernel
from convtool.twins import layer as twin
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
            f"{layer.describe()} {'take' if layer.per_channel and layer.inputs > 1 else 'takes'} "
            f"{layer.inputs} input channel{'s' if layer.inputs != 1 else ''}; {what} has "
            f"{channels}: use a layer with "
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
        paths = {p: _path(layer.kernel(*p), x3.shape, method, p, out_dtype) for p in pairs}
        core_pairs = [p for p in pairs if paths[p] == "fft"]
        _shared_pass(x3, layer, paths, border, cval, threads, out)
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


def _path(
    weights: np.ndarray, shape: tuple[int, ...], method: str, pair: tuple[int, int], dtype: type
) -> str:
    """How one pair is done: ``direct`` or ``separable`` in the shared pass, or ``fft`` apart
    (the core's FFT path, a plane at a time): the core's own choice for the plane
    (:func:`~convtool.core.dispatch.choose_method`, rank 1 judged at the precision ``dtype``
    filters in), or the method asked for."""
    kshape = (int(weights.shape[0]), int(weights.shape[1]))
    chosen = choose_method(shape[:2], kshape, method)
    precision = filtering_precision(dtype, weights)
    if chosen == "separable" and separable_factors(weights, precision) is None:
        if method == "separable":
            raise KernelError(
                f"the {kshape[0]}x{kshape[1]} kernel K[{pair[0]}, {pair[1]}] is not separable "
                "(its rank is above 1); method 'separable' needs every pair separable"
            )
        chosen = choose_method(shape[:2], kshape, "nonseparable")
    return chosen


def _tables(
    layer: Layer, paths: dict[tuple[int, int], str], out_dtype: type, cmap: np.ndarray
) -> LayerTaps:
    """The direct taps and the separable factors of the pairs done in the shared pass."""
    kh, kw = layer.shape
    tj, tb, tw, starts = [], [], [], [0]
    pin, pu, pv, pstarts = [], [], [], [0]
    for o in range(layer.outputs):
        j, b, w = [], [], []
        for i in range(layer.inputs):
            k = layer.kernel(o, i)
            if paths.get((o, i)) == "direct":
                a, c = np.nonzero(k)
                j.append(i * kh + a)
                b.append(c)
                w.append(k[a, c])
            elif paths.get((o, i)) == "separable":
                factors = separable_factors(k, filtering_precision(out_dtype, k))
                assert factors is not None
                pin.append(i)
                pu.append(factors[0])
                pv.append(factors[1])
        tj.append(np.concatenate([np.zeros(0, np.int64), *j]))
        tb.append(np.concatenate([np.zeros(0, np.int64), *b]))
        tw.append(np.concatenate([np.zeros(0), *w]))
        starts.append(starts[-1] + len(tj[-1]))
        pstarts.append(len(pin))
    prows = np.stack([i * kh + np.arange(kh) for i in range(layer.inputs)])
    return LayerTaps(
        np.concatenate(tj).astype(np.int64),
        np.concatenate(tb).astype(np.int64),
        np.concatenate(tw).astype(out_dtype),
        np.array(starts, np.int64),
        np.array(pstarts, np.int64),
        np.array(pin, np.int64),
        prows.astype(np.int64),
        np.array(pu, out_dtype).reshape(len(pin), kh),
        np.arange(kw, dtype=np.int64),
        np.array(pv, out_dtype).reshape(len(pin), kw),
        layer.biases.astype(out_dtype),
        cmap.astype(np.int64),
    )


def _shared_pass(
    x: np.ndarray,
    layer: Layer,
    paths: dict[tuple[int, int], str],
    border: str,
    cval: float,
    threads: int | None,
    out: np.ndarray,
) -> None:
    """Bias plus the direct and separable pairs of ``paths`` in one jitted pass into ``out``
    (every output channel written, with its bias alone where it has no such pairs)."""
    out_dtype = out.dtype.type
    h, w, channels = x.shape
    kh, kw = layer.shape
    ho, wo = out.shape[:2]
    if border == "valid":
        ph = pw = mode = 0
        cmap = np.arange(wo + kw - 1, dtype=np.int64)
    else:
        ph, pw, mode = kh // 2, kw // 2, BORDER_CODES[border]
        cmap = extend_index(w, -pw, wo + kw - 1, mode)
    taps = _tables(layer, paths, out_dtype, cmap)
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
        compiled.run("correlate_layer", args, twin.correlate_layer, now=threads is not None)
