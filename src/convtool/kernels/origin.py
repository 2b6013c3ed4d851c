"""The kernel's origin, scipy.ndimage's ``origin=``: which cell of the kernel sits on the pixel.

convtool anchors a kernel of side k at cell ``k//2``; an origin ``o`` moves the anchor to cell
``k//2 + o`` (scipy's meaning: a positive origin shifts the filter to the left / up), which must
lie inside the kernel: ``-(k//2) ≤ o ≤ (k−1)//2``. A moved anchor is written as data: the
kernel is padded with zeros into an odd-sized one whose centre is that cell, so every path
(direct, separable, FFT, bands, Dask) applies it unchanged and ``--convolve``'s flip of an
odd kernel is the mathematical convolution about that cell (scipy's ``convolve``, and
ImageMagick's ``-morphology Convolve`` with a ``+x+y`` offset).
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from convtool.errors import KernelError, UsageError

Origin = tuple[int, int]


def check_origin(origin: object) -> Origin:
    """``origin`` (an integer for both axes, or ``(dy, dx)``) as a pair of ints, else a
    UsageError."""
    values = (origin, origin) if _is_int(origin) else origin
    if (
        not isinstance(values, (tuple, list, np.ndarray))
        or len(values) != 2
        or not all(_is_int(v) for v in values)
    ):
        raise UsageError(
            f"origin must be an integer or a pair of integers (dy, dx); got {origin!r}"
        )
    return int(values[0]), int(values[1])


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_valid_origin(origin: Origin | None) -> None:
    """A UsageError for a moved origin with border ``valid``, which has no border to shift over
    (the valid result of a kernel is the same wherever its anchor is, but for its place)."""
    if origin is not None and origin != (0, 0):
        raise UsageError(
            f"origin {origin[0]},{origin[1]} with border 'valid': a valid result has no border "
            "to shift over; crop the result instead, or use a padding border such as 'reflect'"
        )


def parse_origin(text: str) -> Origin:
    """``"DY,DX"`` (or one integer for both) as an origin, else a UsageError."""
    parts = [p.strip() for p in text.split(",")]
    numbers_ = [int(p) for p in parts if re.fullmatch(r"[+-]?[0-9]{1,18}", p)]
    if len(numbers_) != len(parts):
        numbers_ = []
    if len(numbers_) not in (1, 2):
        raise UsageError(
            f"--origin {text!r}: expected two integers DY,DX (e.g. --origin -1,0), the "
            "anchor's offset from the kernel's centre cell in rows and columns"
        )
    return check_origin(numbers_[0] if len(numbers_) == 1 else tuple(numbers_))


def anchor_cells(shape: tuple[int, int], origin: Origin, what: str = "kernel") -> Origin:
    """The kernel cell ``(kh//2 + dy, kw//2 + dx)`` that sits on the pixel, else a KernelError
    when the origin puts it outside the kernel."""
    cells = []
    for axis, (k, o) in enumerate(zip(shape, origin, strict=True)):
        if not -(k // 2) <= o <= (k - 1) // 2:
            name = "dy" if axis == 0 else "dx"
            raise KernelError(
                f"{what}: origin {name}={o} is outside the {shape[0]}x{shape[1]} kernel; for a "
                f"side of {k} it must be from {-(k // 2)} to {(k - 1) // 2} (the anchor is cell "
                "k//2 + origin)"
            )
        cells.append(k // 2 + o)
    return cells[0], cells[1]


def at_origin(weights: np.ndarray, origin: Origin, what: str = "kernel") -> np.ndarray:
    """``weights`` padded with zeros into an odd-sized kernel centred on cell
    ``(kh//2 + dy, kw//2 + dx)``: correlating with it is scipy's ``correlate(..., origin)``.

    >>> at_origin(np.array([[1.0, 2.0]]), (0, -1))
    array([[0., 1., 2.]])
    """
    shape = (int(weights.shape[0]), int(weights.shape[1]))
    pads = []
    for k, cell in zip(shape, anchor_cells(shape, origin, what), strict=True):
        radius = max(cell, k - 1 - cell)
        pads.append((radius - cell, radius - (k - 1 - cell)))
    if all(p == (0, 0) for p in pads):
        return weights
    return np.pad(weights, pads)
