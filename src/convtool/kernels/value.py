"""The kernel value: read-only float64 weights with a name and a bias, and their checks.

Every matrix in convtool is in correlation orientation: ``out[i, j] = Σ K[a, b] · X[i + a − kh//2,
j + b − kw//2]``. ``convolve`` flips it; nothing in ``kernels`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from convtool.errors import KernelError

MAX_KERNEL_SIDE = 1025
"""The largest kernel side convtool accepts, for kernel specs, files and ``learn --size``."""

MAX_KERNEL_MAGNITUDE = float(np.finfo(np.float32).max)
"""The largest Σ|K| accepted: a kernel beyond it overflows float32 images, whose values are in
[0, 1] (and its sum, for ``--normalize``, may overflow float64)."""

ZERO_SUM_RTOL = 1e-12
"""A kernel is zero-sum when ``|ΣK| ≤ ZERO_SUM_RTOL · Σ|K|``: never divide by a rounding residue."""


@dataclass(frozen=True, eq=False)
class Kernel:
    """A correlation kernel: read-only float64 weights, the spec it came from, and a bias.

    The bias is added right after this kernel is applied (``X ⋆ K + bias``); it comes from kernel
    files (``# bias: B``, ``{"bias": B}``) and from ``convtool learn --bias``.
    """

    weights: np.ndarray
    name: str = "custom"
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise KernelError(f"a kernel's name is a string; got {self.name!r}")
        w = validate_weights(self.weights, self.name)
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        bias = self.bias
        if isinstance(bias, bool) or not isinstance(bias, (int, float, np.integer, np.floating)):
            raise KernelError(f"kernel {self.name!r}: bias {bias!r} is not a real number")
        if not math.isfinite(bias):
            raise KernelError(f"kernel {self.name!r}: bias {bias!r} is not a finite number")
        # a plain float: numpy scalars would be written 'np.float32(0.1)' in kernel files
        object.__setattr__(self, "bias", float(bias))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))

    @property
    def is_zero_sum(self) -> bool:
        return is_zero_sum(self.weights)

    def flipped(self) -> Kernel:
        """The same kernel turned 180° (``K[::-1, ::-1]``): correlation with it is convolution."""
        return Kernel(self.weights[::-1, ::-1], f"flipped {self.name}", self.bias)

    def normalized(self) -> Kernel:
        """The kernel divided by its sum; a zero-sum kernel is returned as it is."""
        if self.is_zero_sum:
            return self
        return Kernel(self.weights / self.weights.sum(), f"normalized {self.name}", self.bias)


def is_zero_sum(weights: np.ndarray) -> bool:
    """True when ``|ΣK| ≤ 1e-12·Σ|K|``, the test ``--normalize`` uses before dividing by ΣK."""
    w = np.asarray(weights, dtype=np.float64)
    return bool(abs(w.sum()) <= ZERO_SUM_RTOL * np.abs(w).sum())


def validate_weights(weights: object, what: str = "kernel") -> np.ndarray:
    """Return ``weights`` as a fresh 2-D float64 array, or raise a KernelError saying why not."""
    if isinstance(weights, (list, tuple)):
        check_rows([list(r) if isinstance(r, (tuple, np.ndarray)) else r for r in weights], what)
    try:
        raw = np.asarray(weights)
        if raw.dtype.kind == "c":
            raise KernelError(
                f"{what}: has complex entries; a kernel needs real numbers (pass .real, or "
                "filter the real and imaginary parts separately)"
            )
        w = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise KernelError(
            f"{what}: not a matrix of numbers ({exc}); "
            "write rows of numbers, e.g. '1 0 -1; 2 0 -2; 1 0 -1'"
        ) from None
    if w.ndim == 1:
        w = w[np.newaxis, :]
    if w.ndim != 2:
        layer = "; per-channel kernels and layers take correlate_layer" if w.ndim in (3, 4) else ""
        raise KernelError(
            f"{what}: has {w.ndim} dimensions, shape {w.shape}; a kernel is a 2-D matrix "
            f"(one kernel is applied to every colour channel){layer}"
        )
    if w.size == 0:
        raise KernelError(f"{what}: is empty (shape {w.shape}); give at least one number")
    if max(w.shape) > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{what}: is {w.shape[0]}x{w.shape[1]}; the largest kernel side convtool accepts is "
            f"{MAX_KERNEL_SIDE}"
        )
    if not np.all(np.isfinite(w)):
        raise KernelError(f"{what}: has NaN or infinite entries; every entry must be finite")
    with np.errstate(over="ignore"):
        magnitude = float(np.abs(w).sum())
    if not magnitude <= MAX_KERNEL_MAGNITUDE:
        raise KernelError(
            f"{what}: its entries are so large that their magnitudes sum to {magnitude:g}, "
            f"beyond {MAX_KERNEL_MAGNITUDE:g} (float32 images would overflow); scale the kernel "
            "down and use --scale for the factor"
        )
    return np.ascontiguousarray(w)


def check_rows(data: object, what: str) -> object:
    """``data`` if it is a number or a list of rows of one length, else a KernelError."""
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        lengths = {len(r) for r in data}
        if len(lengths) > 1:
            raise KernelError(
                f"{what}: ragged rows (lengths {sorted(lengths)}); every row needs "
                "the same number of entries"
            )
    if isinstance(data, (list, int, float)) and not isinstance(data, bool):
        return data
    raise KernelError(f"{what}: expected a list of rows of numbers")
