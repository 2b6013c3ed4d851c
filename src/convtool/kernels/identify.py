"""Naming a kernel: the built-in family member closest to a fitted kernel, its parameters, scale
and orientation, and how far it is from it.

Every candidate is made by the built-in factories themselves (:mod:`convtool.kernels.builtins`),
so a name given here is a spec ``apply -k`` accepts and means exactly that kernel. A candidate
smaller than the kernel is compared placed at its centre (zeros around it); one whose placement
would not be centred is not compared, since it would shift the result. The scale is the least-
squares factor ``<K, T> / <T, T>``; the error is ``‖K − s·T‖ / ‖K‖`` (Frobenius norms).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from convtool.errors import KernelError
from convtool.kernels import builtins

THRESHOLD = 0.05
"""The largest relative error for which a family is named: 5 % of ‖K‖."""

_FIXED = (
    "identity",
    "edge-x",
    "edge-y",
    "sobel-x",
    "sobel-y",
    "scharr-x",
    "scharr-y",
    "prewitt-x",
    "prewitt-y",
    "roberts-x",
    "roberts-y",
    "laplacian",
    "laplacian8",
    "sharpen",
    "emboss",
)
"""Fixed built-ins, in the order a tie is resolved (the simpler name first)."""

PREFERENCE = 0.005
"""A candidate replaces an earlier one only when its error is smaller by more than this (0.5 %
of ‖K‖): fixed names come first, then the one-parameter families, and the kernel as given
before its flipped form, so ``sobel-x`` is not named ``directional:angle=0.1``."""

_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class Match:
    """A named kernel: ``scale`` times the kernel of ``spec`` (flipped both ways when
    ``convolve``: then ``apply -k SPEC --convolve`` makes it), ``error`` of ‖K‖ away."""

    spec: str
    scale: float
    error: float
    convolve: bool = False

    def describe(self) -> str:
        """``≈ gaussian:sigma=1.50,size=9 (0.3 % of ‖K‖)``, with the scale and orientation."""
        text = f"≈ {self.spec}"
        if not math.isclose(self.scale, 1.0, rel_tol=1e-3):
            text += f" × {self.scale:.4g}"
        if self.convolve:
            text += " (with --convolve)"
        return f"{text} ({100 * self.error:.1f} % of ‖K‖)"

    def as_json(self) -> dict[str, object]:
        """The match for ``--json``: ``{"spec", "scale", "convolve", "error"}``."""
        return {
            "spec": self.spec,
            "scale": self.scale,
            "convolve": self.convolve,
            "error": self.error,
        }


def closest(kernel: np.ndarray, threshold: float = THRESHOLD) -> Match | None:
    """The built-in family member closest to the 2-D ``kernel``; None when none is within
    ``threshold`` (relative error) or the kernel is zero."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or not np.all(np.isfinite(k)):
        raise ValueError(f"closest: a finite 2-D kernel is required; got shape {k.shape}")
    norm = float(np.linalg.norm(k))
    if norm == 0.0:
        return None
    best: Match | None = None
    for convolve, oriented in ((False, k), (True, k[::-1, ::-1])):
        for match in _candidates(oriented, norm, convolve):
            if best is None or match.error < best.error - PREFERENCE:
                best = match
    if best is None or best.error > threshold:
        return None
    return best


def _candidates(k: np.ndarray, norm: float, convolve: bool) -> Iterator[Match]:
    for name in _FIXED:
        template = builtins.BUILTINS[name].factory()
        fitted = _fit(k, norm, template)
        if fitted is not None:
            yield Match(name, fitted[0], fitted[1], convolve)
    yield from _boxes(k, norm, convolve)
    yield from _directional(k, norm, convolve)
    if k.shape[0] == k.shape[1] and k.shape[0] >= 3:
        n = k.shape[0]
        for name, factory in (("gaussian", builtins.gaussian), ("log", builtins.log)):
            make = functools.partial(_sized, factory, n)
            match = _one_sigma(k, norm, name, make, n, convolve)
            if match is not None:
                yield match
        match = _unsharp(k, norm, n, convolve)
        if match is not None:
            yield match
        match = _motion(k, norm, convolve)
        if match is not None:
            yield match


def _sized(factory: Callable[..., np.ndarray], n: int, sigma: float) -> np.ndarray:
    return factory(sigma, size=n)


def _placed(template: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """``template`` at the centre of zeros of ``shape``; None when it is larger or off-centre."""
    dh, dw = shape[0] - template.shape[0], shape[1] - template.shape[1]
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        return None
    out = np.zeros(shape)
    out[dh // 2 : dh // 2 + template.shape[0], dw // 2 : dw // 2 + template.shape[1]] = template
    return out


def _fit(k: np.ndarray, norm: float, template: np.ndarray) -> tuple[float, float] | None:
    """Scale and relative error of ``template`` placed in ``k``'s shape; None if it cannot be."""
    placed = _placed(template, k.shape)
    if placed is None:
        return None
    energy = float(np.vdot(placed, placed))
    if energy == 0.0:
        return None
    scale = float(np.vdot(k, placed)) / energy
    return scale, float(np.linalg.norm(k - scale * placed)) / norm


def _boxes(k: np.ndarray, norm: float, convolve: bool) -> Iterator[Match]:
    for n in range(2, min(k.shape) + 1):
        fitted = _fit(k, norm, builtins.box(n))
        if fitted is not None:
            yield Match(f"box:{n}", fitted[0], fitted[1], convolve)


def _directional(k: np.ndarray, norm: float, convolve: bool) -> Iterator[Match]:
    """a·sobel-x + b·sobel-y, solved in closed form: angle atan2(b, a), scale hypot(a, b)."""
    sx = _placed(builtins.SOBEL_X, k.shape)
    if sx is None:
        return
    sy = _placed(builtins.SOBEL_X.T, k.shape)
    assert sy is not None
    basis = np.stack([sx.ravel(), sy.ravel()], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, k.ravel(), rcond=None)
    angle = round(math.degrees(math.atan2(b, a)), 1) % 360  # a positive scale
    template = builtins.directional(angle)
    fitted = _fit(k, norm, template)
    if fitted is not None:
        yield Match(f"directional:angle={angle:g}", fitted[0], fitted[1], convolve)


def _one_sigma(
    k: np.ndarray,
    norm: float,
    name: str,
    make: Callable[[float], np.ndarray],
    n: int,
    convolve: bool,
) -> Match | None:
    """The σ of ``make`` closest to ``k`` (golden-section search on log σ)."""

    def error(log_sigma: float) -> float:
        fitted = _fit(k, norm, make(math.exp(log_sigma)))
        return math.inf if fitted is None else fitted[1]

    log_sigma = _minimise(error, math.log(0.2), math.log(max(1.0, float(n))))
    sigma = _rounded(math.exp(log_sigma))
    fitted = _fit(k, norm, make(sigma))
    if fitted is None:
        return None
    return Match(f"{name}:sigma={sigma:g},size={n}", fitted[0], fitted[1], convolve)


def _unsharp(k: np.ndarray, norm: float, n: int, convolve: bool) -> Match | None:
    """identity·a + gaussian(σ)·b for each σ (two coefficients by least squares): the unsharp
    mask of amount −b / (a + b), scaled by a + b."""
    if n % 2 == 0:
        return None
    centre = np.zeros((n, n))
    centre[n // 2, n // 2] = 1.0

    def solve(log_sigma: float) -> tuple[float, float, float]:
        g = builtins.gaussian(math.exp(log_sigma), size=n)
        basis = np.stack([centre.ravel(), g.ravel()], axis=1)
        (a, b), *_ = np.linalg.lstsq(basis, k.ravel(), rcond=None)
        residual = float(np.linalg.norm(k.ravel() - basis @ np.array([a, b]))) / norm
        return residual, float(a), float(b)

    log_sigma = _minimise(lambda s: solve(s)[0], math.log(0.3), math.log(max(1.0, float(n))))
    sigma = _rounded(math.exp(log_sigma))
    _, a, b = solve(math.log(sigma))
    if a + b == 0:
        return None
    amount = _rounded(-b / (a + b))  # not positive: a blur, or no mask at all
    if not amount > 0:
        return None
    try:
        template = builtins.unsharp(sigma, amount, size=n)
    except KernelError:
        return None
    fitted = _fit(k, norm, template)
    if fitted is None:
        return None
    spec = f"unsharp:sigma={sigma:g},amount={amount:g},size={n}"
    return Match(spec, fitted[0], fitted[1], convolve)


def _motion(k: np.ndarray, norm: float, convolve: bool) -> Match | None:
    """A motion blur: its angle from the weights' principal axis, its length from their
    extent along it, each refined over a few neighbours."""
    n = k.shape[0]
    if n % 2 == 0:
        return None
    weights = np.clip(k if k.sum() >= 0 else -k, 0.0, None)
    total = float(weights.sum())
    if total <= 0:
        return None
    c = (n - 1) / 2
    rows, cols = np.mgrid[0:n, 0:n]
    x, y = cols - c, -(rows - c)  # y up, as motion's angle counts
    sxx = float((weights * x * x).sum()) / total
    syy = float((weights * y * y).sum()) / total
    sxy = float((weights * x * y).sum()) / total
    angle0 = math.degrees(0.5 * math.atan2(2 * sxy, sxx - syy)) % 180
    along = np.abs(x * math.cos(math.radians(angle0)) + y * math.sin(math.radians(angle0)))
    support = weights > 0.05 * float(weights.max())
    length0 = min(float(n), 2 * float(along[support].max()) + 1 if support.any() else 1.0)
    # many (length, angle) pairs cross the same cells: round values are tried first and kept
    # unless another is better
    lengths = sorted(
        range(max(1, math.floor(length0) - 2), math.ceil(length0) + 1),
        key=lambda L: (L % 2 == 0, abs(L - length0)),
    )
    centre = round(angle0)
    angles = sorted(
        range(centre - 3, centre + 4),
        key=lambda a: (a % 15 != 0, a % 5 != 0, abs(a - angle0)),
    )
    best: tuple[float, float, float, float] | None = None
    for length in lengths:
        for angle in angles:
            try:
                template = builtins.motion(float(length), float(angle % 180))
            except KernelError:
                continue
            fitted = _fit(k, norm, template)
            if fitted is not None and (best is None or fitted[1] < best[3] - 1e-9):
                best = (float(length), float(angle % 180), fitted[0], fitted[1])
    if best is None:
        return None
    return Match(f"motion:length={best[0]:g},angle={best[1]:g}", best[2], best[3], convolve)


def _minimise(f: Callable[[float], float], lo: float, hi: float, steps: int = 40) -> float:
    """The minimum of a unimodal ``f`` on [lo, hi] by golden-section search."""
    a, b = lo, hi
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (a + b) / 2


def _rounded(value: float) -> float:
    """Three significant digits: the precision a spec is written with."""
    return float(f"{value:.3g}")
