"""How long a fit will take, before it starts: the route for the normal equations, the estimate
that decides whether progress is shown, and the refusal of fits that would not end in time.

The figures are a cost model on two cores, good to a factor of two or so: enough to choose
between the pixel-by-pixel pass and the FFTs, and to tell seconds from hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from convtool.errors import LearnError

DIRECT_SECONDS = 1.5e-10
"""Cost model, the jitted normal equations: seconds per sample and per pair of taps (n²/2)."""

FFT_PIXEL_SECONDS = 1.0e-7
"""Cost model, the FFT Gram matrix: seconds per input value (channel × pixel) for the
transforms and the box sums."""

FFT_LAG_SECONDS = 6.0e-8
"""Cost model, the FFT Gram matrix: seconds per (2kh − 1)(2kw − 1)·kh·kw for the corners and
the assembly."""

PATCH_SECONDS = 1.0e-10
"""Cost model, samples left out of an FFT Gram matrix: seconds per sample and per entry of the
(n + 2)² matrix (a block matrix product)."""

EPOCH_SECONDS = 1.0e-9
"""Cost model, one epoch of gradient descent: seconds per sample and per tap."""

EPOCH_OVERHEAD = 5.0e-5
"""Cost model, one epoch of gradient descent: seconds per epoch whatever its size (the calls
into the compiled pass and the Python around them)."""

SHOW_PROGRESS = 1.0
"""Progress is shown for fits estimated to take longer than this many seconds."""

LONG_FIT = 600.0
"""Fits estimated to take longer than this many seconds are refused unless asked for
(``allow_long``, ``--allow-long``)."""


Meter = Callable[[float], None]
"""Told the fraction of the fit done, from 0 to 1, now and then."""


@dataclass(frozen=True)
class PairWork:
    """One pair's size: channels, input height and width, valid samples, samples left out."""

    channels: int
    h: int
    w: int
    samples: int
    left_out: int


def direct_seconds(pair: PairWork, kh: int, kw: int) -> float:
    n = kh * kw
    return DIRECT_SECONDS * pair.samples * n * (n + 3) / 2


def fft_seconds(pair: PairWork, kh: int, kw: int) -> float:
    n = kh * kw
    lags = (2 * kh - 1) * (2 * kw - 1) * n
    fewer = min(pair.left_out, pair.samples - pair.left_out)
    if pair.left_out > pair.samples - pair.left_out:  # summed over the kept samples alone
        return PATCH_SECONDS * fewer * (n + 2) ** 2
    pixels = pair.channels * pair.h * pair.w
    patches = PATCH_SECONDS * fewer * (n + 2) ** 2
    return FFT_PIXEL_SECONDS * pixels + FFT_LAG_SECONDS * lags + patches


FFT_FROM = 1.0
"""The FFT route is taken only when the pixel-by-pixel pass is estimated to take longer than
this many seconds: below, that pass is quick anyway, needs no float64 copy of the images (its
memory stays O(n²)) and keeps the bytes of a small fit as they were."""


def use_fft(pair: PairWork, kh: int, kw: int) -> bool:
    """Whether the FFT route is expected to be much faster than the pixel-by-pixel pass."""
    direct = direct_seconds(pair, kh, kw)
    return direct > FFT_FROM and fft_seconds(pair, kh, kw) < direct


def normal_seconds(pairs: list[PairWork], kh: int, kw: int) -> float:
    """The estimated time of the normal equations, each pair by its faster route."""
    return sum(min(direct_seconds(p, kh, kw), fft_seconds(p, kh, kw)) for p in pairs)


def epoch_seconds(pairs: list[PairWork], kh: int, kw: int) -> float:
    return EPOCH_OVERHEAD + EPOCH_SECONDS * sum(p.samples for p in pairs) * kh * kw


def check_time(seconds: float, what: str, allow_long: bool, hint: str) -> None:
    """Refuse a fit estimated at more than :data:`LONG_FIT` seconds unless ``allow_long``."""
    if allow_long or seconds <= LONG_FIT:
        return
    raise LearnError(
        f"{what} would take about {duration(seconds)} (estimated before starting), more than "
        f"the {duration(LONG_FIT)} learn runs without being asked; {hint}, or add --allow-long "
        "(allow_long=True) to run it anyway"
    )


def duration(seconds: float) -> str:
    """``seconds`` in words a person reads at a glance: 40 s, 12 min, 3.5 h, 2e+05 years."""
    if not math.isfinite(seconds):
        return "for ever"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    if seconds < 3.15e7:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / 3.15e7:.2g} years"


def shares(meter: Meter | None, seconds: list[float]) -> list[Meter | None]:
    """One meter per piece of work, each moving ``meter`` across its share of the total (Nones
    when no progress is to be shown: no meter, or an estimate under :data:`SHOW_PROGRESS`)."""
    total = sum(seconds)
    if meter is None or total <= SHOW_PROGRESS:
        return [None] * len(seconds)
    starts = [sum(seconds[:i]) / total for i in range(len(seconds))]

    def piece(start: float, span: float) -> Meter:
        return lambda fraction: meter(start + span * min(max(fraction, 0.0), 1.0))

    return [piece(a, s / total) for a, s in zip(starts, seconds, strict=True)]
