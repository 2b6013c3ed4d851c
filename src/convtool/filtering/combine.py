"""Kernels side by side: each applied to the same input, their raw responses combined.

``--combine MODE`` turns the ``-k`` kernels from a chain into parallel branches; with rᵢ the
response of kernel i (its file's bias added), the result, before ``--scale``/``--bias`` and the
pixel policy, is::

    magnitude  √(Σ rᵢ²)        (sobel-x and sobel-y: the gradient magnitude, np.hypot)
    sum        Σ rᵢ
    max        maxᵢ rᵢ         (eight compass rotations: Kirsch's and Robinson's detectors)
    min        minᵢ rᵢ
    maxabs     the rᵢ of largest |rᵢ|, its sign kept

Kernels of different sizes are padded with zeros onto one grid, each keeping its anchor, so
that every branch covers the same pixels (with ``border="valid"``, those of the largest).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convtool.choices import COMBINE_MODES
from convtool.core.correlate import KernelLike, anchored, correlate, kernel_weights
from convtool.errors import UsageError
from convtool.kernels.origin import check_origin
from convtool.kernels.value import Kernel


def check_combine(mode: str) -> str:
    """``mode`` if it is one of :data:`~convtool.choices.COMBINE_MODES`, else a UsageError."""
    if mode not in COMBINE_MODES:
        raise UsageError(f"unknown combine mode {mode!r}; choose one of {', '.join(COMBINE_MODES)}")
    return mode


def combine_responses(responses: Sequence[np.ndarray], mode: str) -> np.ndarray:
    """The responses (one shape and dtype) merged as ``mode`` says (see the module)."""
    check_combine(mode)
    first = responses[0]
    if mode == "magnitude":
        total = np.zeros_like(first)
        for r in responses:
            total += r * r
        return np.sqrt(total, out=total)
    if mode == "sum":
        return np.add.reduce(np.stack(responses), axis=0)
    if mode == "max":
        return np.maximum.reduce(list(responses))
    if mode == "min":
        return np.minimum.reduce(list(responses))
    out = first.copy()
    for r in responses[1:]:
        np.copyto(out, r, where=np.abs(r) > np.abs(out))
    return out


def on_one_grid(kernels: Sequence[Kernel]) -> tuple[Kernel, ...]:
    """The kernels padded with zeros to one shape, each anchor (``k//2``) on the grid's own."""
    shapes = [k.shape for k in kernels]
    grid = tuple(
        max(s[a] // 2 for s in shapes) + max(s[a] - 1 - s[a] // 2 for s in shapes) + 1
        for a in (0, 1)
    )
    out = []
    for k in kernels:
        pads = []
        for axis in (0, 1):
            before = grid[axis] // 2 - k.shape[axis] // 2
            pads.append((before, grid[axis] - k.shape[axis] - before))
        weights = np.pad(k.weights, pads) if any(p != (0, 0) for p in pads) else k.weights
        out.append(Kernel(weights, k.name, k.bias))
    return tuple(out)


def combined_responses(
    x: np.ndarray,
    kernels: Sequence[Kernel],
    mode: str,
    *,
    border: str,
    cval: float,
    threads: int | None,
    method: str = "auto",
) -> np.ndarray:
    """Each kernel (on one grid) applied to ``x``, its bias added, the responses combined."""
    responses = []
    for k in kernels:
        r = correlate(x, k.weights, border=border, cval=cval, method=method, threads=threads)
        if k.bias:
            r = r + r.dtype.type(k.bias)
        responses.append(r)
    return combine_responses(responses, mode)


def correlate_combined(
    image: np.ndarray,
    kernels: Sequence[KernelLike],
    combine: str = "magnitude",
    *,
    border: str = "reflect",
    cval: float = 0.0,
    convolve: bool = False,
    origin: int | tuple[int, int] | None = None,
    method: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Correlate ``image`` with each kernel and combine the responses (see the module).

    Each kernel is taken as :func:`~convtool.core.correlate.correlate` takes it (a bias it
    carries is not added); ``convolve`` and ``origin`` as there, for every kernel.

    >>> x = np.array([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0], [4.0, 4.0, 7.0]])
    >>> correlate_combined(x, [[[-1, 1]], [[-1], [1]]], "magnitude", border="valid")
    array([[0., 3.],
           [4., 5.]])
    """
    check_combine(combine)
    if isinstance(kernels, (str, Kernel, np.ndarray)) or not len(kernels):
        raise UsageError("kernels is a list of kernels (at least one), each combined with the rest")
    prepared = []
    for kernel in kernels:
        weights = kernel_weights(kernel)
        if origin is not None:
            weights = anchored(weights, check_origin(origin), border, always=convolve)
        prepared.append(Kernel(weights[::-1, ::-1] if convolve else weights))
    return combined_responses(
        image,
        on_one_grid(prepared),
        combine,
        border=border,
        cval=cval,
        threads=threads,
        method=method,
    )
