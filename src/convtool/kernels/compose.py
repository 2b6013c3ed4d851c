"""The one kernel equal to a chain of kernels: the receptive field of the chain.

Correlating with A, then with B, is correlating once with their full convolution ``A ∗ B``
(in correlation orientation: ``(x ⋆ A) ⋆ B = x ⋆ (A ∗ B)``), of size (ha + hb − 1) × (wa + wb − 1);
a bias carries through as ``b = bA · ΣB + bB``. For n kernels the size is
(Σkh − n + 1) × (Σkw − n + 1). Layers compose the same way, summed over the channels between
them: ``K[o, i] = Σ_m A[m, i] ∗ B[o, m]``, ``b[o] = Σ_m bA[m] · ΣB[o, m] + bB[o]``; a 2-D kernel
beside a layer acts on each of its channels alone.

Each kernel of a chain is anchored at its centre (kh//2, kw//2), so the chain reads offsets
from −Σ kh//2; the composed kernel is anchored at its own centre. Where two or more kernels
have an even side the two differ, and zero rows (columns) are appended at the bottom (right)
so that applying the composed kernel equals applying the chain, away from the borders.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convtool.errors import KernelError
from convtool.kernels.layer import Layer
from convtool.kernels.value import MAX_KERNEL_SIDE, Kernel


def compose_kernels(kernels: Sequence[Kernel | Layer]) -> Kernel | Layer:
    """The single kernel (or layer) equal to applying ``kernels`` in order (see above): a
    :class:`Kernel` when all are 2-D, else a :class:`Layer`."""
    if not kernels:
        raise KernelError("compose needs at least one kernel")
    names = " then ".join(k.name for k in kernels)
    _check_size(kernels)
    if all(isinstance(k, Kernel) for k in kernels):
        weights = np.ones((1, 1))
        bias = 0.0
        for k in kernels:
            assert isinstance(k, Kernel)
            bias = bias * float(k.weights.sum()) + k.bias
            weights = full_convolution(weights, k.weights)
        return Kernel(_anchored(weights, kernels), names, bias)
    layers = _as_layers(kernels)
    weights4 = np.eye(layers[0].inputs)[:, :, np.newaxis, np.newaxis]  # the identity layer
    biases = np.zeros(layers[0].inputs)
    for layer in layers:
        full = layer.full()
        sums = full.sum(axis=(2, 3))
        biases = sums @ biases + layer.biases
        out = np.zeros((layer.outputs, weights4.shape[1], *_sum_shape(weights4, full)))
        for o in range(layer.outputs):
            for m in range(layer.inputs):
                if not full[o, m].any():
                    continue
                for i in range(weights4.shape[1]):
                    if weights4[m, i].any():
                        out[o, i] += full_convolution(weights4[m, i], full[o, m])
        weights4 = out
    anchored = np.stack([np.stack([_anchored(w, kernels) for w in row]) for row in weights4])
    return Layer(anchored, biases, names)


def full_convolution(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The full 2-D convolution ``a ∗ b``, (ha + hb − 1) × (wa + wb − 1), as a sum of shifted
    copies of ``a`` (exact for integer kernels; small kernels need no FFT)."""
    ha, wa = a.shape
    hb, wb = b.shape
    out = np.zeros((ha + hb - 1, wa + wb - 1))
    for p, q in zip(*np.nonzero(b), strict=True):
        out[p : p + ha, q : q + wa] += b[p, q] * a
    return out


def composed_size(kernels: Sequence[Kernel | Layer]) -> tuple[int, int]:
    """(Σkh − n + 1, Σkw − n + 1), the full size of the chain's kernel (before any padding)."""
    n = len(kernels)
    return (
        sum(k.shape[0] for k in kernels) - n + 1,
        sum(k.shape[1] for k in kernels) - n + 1,
    )


def describe_composition(kernels: Sequence[Kernel | Layer]) -> str:
    """A sentence on the composed kernel's size: ``3 kernels compose to one 7x7 kernel
    (3+5-1 rows, 3+5-1 columns): the receptive field of the chain``."""
    h, w = composed_size(kernels)
    rows, cols = padding(kernels)
    heights = "+".join(str(k.shape[0]) for k in kernels)
    widths = "+".join(str(k.shape[1]) for k in kernels)
    n = len(kernels)
    text = (
        f"{n} kernels compose to one {h}x{w} kernel ({heights}-{n - 1} rows, {widths}-{n - 1} "
        "columns): the receptive field of the chain"
    )
    if rows or cols:
        text += (
            f"; written {h + rows}x{w + cols}, with {rows} zero rows below and {cols} zero "
            "columns on the right, so that its centre is where the chain's even-sized kernels "
            "anchor it"
        )
    return text


def padding(kernels: Sequence[Kernel | Layer]) -> tuple[int, int]:
    """The zero rows and columns appended so that the composed kernel's centre is the chain's
    anchor: one fewer than the kernels with an even height (width), at least none."""
    evens = [sum(1 for k in kernels if k.shape[axis] % 2 == 0) for axis in (0, 1)]
    return max(0, evens[0] - 1), max(0, evens[1] - 1)


def _anchored(weights: np.ndarray, kernels: Sequence[Kernel | Layer]) -> np.ndarray:
    rows, cols = padding(kernels)
    return np.pad(weights, ((0, rows), (0, cols)))


def _sum_shape(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    return (a.shape[2] + b.shape[2] - 1, a.shape[3] + b.shape[3] - 1)


def _check_size(kernels: Sequence[Kernel | Layer]) -> None:
    h, w = composed_size(kernels)
    rows, cols = padding(kernels)
    if max(h + rows, w + cols) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"the composed kernel would be {h + rows}x{w + cols}; the largest kernel side "
            f"convtool accepts is {MAX_KERNEL_SIDE}"
        )


def _as_layers(kernels: Sequence[Kernel | Layer]) -> list[Layer]:
    """Every step as a layer: a 2-D kernel on the channels its neighbouring layers give it
    (checked to chain: each layer takes the channels the step before it makes)."""
    first = next(k for k in kernels if isinstance(k, Layer))
    channels = first.inputs
    layers = []
    for number, k in enumerate(kernels, 1):
        if isinstance(k, Layer):
            if k.inputs != channels:
                raise KernelError(
                    f"kernel {number} ({k.name}) is {k.describe()}, taking {k.inputs} "
                    f"channels, but the kernels before it make {channels}; a chain's layers "
                    "must fit each other"
                )
            layers.append(k)
            channels = k.outputs
        else:
            diagonal = np.repeat(k.weights[np.newaxis], channels, axis=0)
            layers.append(Layer(diagonal, np.full(channels, k.bias), k.name))
    return layers
