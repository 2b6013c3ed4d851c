"""The layer value: kernels that act per channel or mix channels, with a bias per output.

A :class:`Layer` holds either one kernel per channel, weights (C, kh, kw), or a full
convolutional layer, weights (C_out, C_in, kh, kw), and one bias per output channel::

    per channel   out[c] = corr(x[c], K[c]) + b[c]
    layer         out[o] = Σ_i corr(x[i], K[o, i]) + b[o]

the semantics of ``torch.nn.functional.conv2d`` (cross-correlation). A 2-D kernel shared by
every channel stays a :class:`~convtool.kernels.value.Kernel`. A layer's text and JSON forms
are in :mod:`convtool.kernels.layer_forms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convtool.errors import KernelError
from convtool.kernels.value import MAX_KERNEL_SIDE, ZERO_SUM_RTOL, validate_weights

MAX_LAYER_CHANNELS = 256
"""The most input or output channels a layer may have (a cap against absurd allocations)."""


@dataclass(frozen=True, eq=False)
class Layer:
    """Per-channel kernels (C, kh, kw) or a layer (C_out, C_in, kh, kw), in correlation
    orientation, read-only float64, with a float64 bias of one value per output channel
    (``None``: zeros)."""

    weights: np.ndarray
    bias: np.ndarray | Sequence[float] | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise KernelError(f"a layer's name is a string; got {self.name!r}")
        w = validate_layer_weights(self.weights, f"layer {self.name!r}")
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", _check_bias(self.bias, w.shape[0], self.name))

    @property
    def per_channel(self) -> bool:
        """Whether this is one kernel per channel (weights (C, kh, kw)), not a mixing layer."""
        return self.weights.ndim == 3

    @property
    def outputs(self) -> int:
        return int(self.weights.shape[0])

    @property
    def inputs(self) -> int:
        return int(self.weights.shape[0] if self.per_channel else self.weights.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """(kh, kw), the size of each kernel."""
        return (int(self.weights.shape[-2]), int(self.weights.shape[-1]))

    @property
    def biases(self) -> np.ndarray:
        """The bias per output channel, (C_out,) float64 (``bias`` as a typed array)."""
        return np.asarray(self.bias)

    def full(self) -> np.ndarray:
        """The weights as a layer, (C_out, C_in, kh, kw): per-channel kernels on the diagonal."""
        if not self.per_channel:
            return self.weights
        c = self.outputs
        out = np.zeros((c, c, *self.shape))
        out[np.arange(c), np.arange(c)] = self.weights
        return out

    def kernel(self, o: int, i: int) -> np.ndarray:
        """K[o, i], the 2-D kernel from input channel ``i`` to output ``o`` (zeros off the
        diagonal of per-channel kernels)."""
        if self.per_channel:
            return self.weights[o] if o == i else np.zeros(self.shape)
        return self.weights[o, i]

    def describe(self) -> str:
        """``3 per-channel 5x5 kernels`` or ``a 3->1 layer of 5x5 kernels``."""
        kh, kw = self.shape
        if self.per_channel:
            plural = "s" if self.outputs != 1 else ""
            return f"{self.outputs} per-channel {kh}x{kw} kernel{plural}"
        return f"a {self.inputs}->{self.outputs} layer of {kh}x{kw} kernels"

    def flipped(self) -> Layer:
        """Every K[o, i] turned 180°: correlation with it is convolution."""
        return Layer(self.weights[..., ::-1, ::-1], self.bias, f"flipped {self.name}")

    def normalized(self) -> Layer:
        """Each output's kernels divided by their joint sum Σ_i ΣK[o, i] (per channel: each
        kernel by its sum), so a flat grey image stays flat; zero-sum outputs are left as they
        are."""
        w = np.array(self.weights)
        for o in range(self.outputs):
            total = w[o].sum()
            if abs(total) > ZERO_SUM_RTOL * np.abs(w[o]).sum():
                w[o] /= total
        return Layer(w, self.bias, f"normalized {self.name}")


def validate_layer_weights(weights: object, what: str = "layer") -> np.ndarray:
    """``weights`` as a fresh 3-D or 4-D float64 array, each kernel checked as a 2-D kernel is
    (finite, not empty, sides and magnitude in range), or a KernelError saying why not."""
    try:
        raw = np.asarray(weights)
        if raw.dtype.kind not in "biuf":
            raise ValueError(f"dtype {raw.dtype}")
        w = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(f"{what}: not an array of real numbers ({exc})") from None
    if w.ndim not in (3, 4):
        raise KernelError(
            f"{what}: has {w.ndim} dimensions, shape {w.shape}; per-channel kernels are "
            "(C, kh, kw) and a layer (C_out, C_in, kh, kw)"
        )
    channels = w.shape[:-2]
    if w.size and max(channels) > MAX_LAYER_CHANNELS:
        raise KernelError(
            f"{what}: shape {w.shape} has {max(channels)} channels; at most "
            f"{MAX_LAYER_CHANNELS} are accepted"
        )
    if w.size == 0:
        raise KernelError(f"{what}: is empty (shape {w.shape}); give at least one number")
    if max(w.shape[-2:]) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what}: its kernels are {w.shape[-2]}x{w.shape[-1]}; the largest kernel side "
            f"convtool accepts is {MAX_KERNEL_SIDE}"
        )
    for index in np.ndindex(*channels):
        validate_weights(w[index], f"{what}, channel {', '.join(str(n) for n in index)}")
    return np.ascontiguousarray(w)


def _check_bias(bias: object, outputs: int, name: str) -> np.ndarray:
    what = f"layer {name!r}"
    if bias is None:
        b = np.zeros(outputs)
    else:
        if isinstance(bias, (list, tuple)) and any(isinstance(v, bool) for v in bias):
            raise KernelError(f"{what}: a bias is a number; got {bias!r}")
        try:
            raw = np.asarray(bias)
            if raw.dtype.kind not in "iuf":
                raise ValueError(f"dtype {raw.dtype}")
            b = np.array(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise KernelError(
                f"{what}: bias {bias!r} is not a list of numbers; give one per output channel"
            ) from None
        if np.ndim(raw) > 1 or b.size != outputs:
            raise KernelError(
                f"{what}: {b.size} bias values for {outputs} output channels; give one per "
                "output channel"
            )
        if not np.all(np.isfinite(b)):
            raise KernelError(f"{what}: bias {b.tolist()} has a value that is not finite")
    b.setflags(write=False)
    return b
