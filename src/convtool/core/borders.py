"""Border rules shared by every entry point (arrays, bands, Dask): the border's name, the
cval, the "kernel larger than the image" rule and the size of a result."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from convtool.choices import BORDERS
from convtool.errors import KernelError, UsageError


def check_border(border: str) -> str:
    """``border`` if it is one of :data:`~convtool.choices.BORDERS`, else a UsageError."""
    if border not in BORDERS:
        raise UsageError(f"unknown border {border!r}; choose one of {', '.join(BORDERS)}")
    return border


def check_cval(cval: object) -> float:
    """``cval`` as a finite float, else a UsageError."""
    try:
        value = float(cval)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"cval must be a number; got {type(cval).__name__} {cval!r}") from None
    if not np.isfinite(value):
        raise UsageError(f"cval {value!r} must be a finite number")
    return value


def check_fits(kshape: tuple[int, int], size: tuple[int, int], border: str) -> None:
    """A KernelError when border ``valid`` leaves no output: a kernel larger than the image."""
    kh, kw = kshape
    h, w = size
    if border == "valid" and (kh > h or kw > w):
        raise KernelError(
            f"kernel {kh}x{kw} is larger than the {h}x{w} image; border 'valid' needs a kernel "
            "no larger than the image: use a smaller kernel or a padding border such as 'reflect'"
        )


def output_shape(shape: tuple[int, ...], kshape: tuple[int, int], border: str) -> tuple[int, ...]:
    """The shape ``correlate`` returns for an image of ``shape`` and a kernel of ``kshape``."""
    if border != "valid":
        return tuple(shape)
    return (shape[0] - kshape[0] + 1, shape[1] - kshape[1] + 1, *shape[2:])


def chain_size(
    size: tuple[int, int], kshapes: Iterable[tuple[int, int]], border: str
) -> tuple[int, int]:
    """The (height, width) after correlating with each kernel of ``kshapes`` in turn."""
    h, w = size
    for kshape in kshapes:
        h, w = output_shape((h, w), kshape, border)
    return int(h), int(w)
