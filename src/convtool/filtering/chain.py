"""Filtering a picture's planes with a chain of kernels: what ``convtool apply`` computes.

For kernels K₁ … Kₙ (each flipped first with ``convolve=True`` and divided by its sum with
``normalize=True``, zero-sum kernels left as they are), a kernel file's own bias bᵢ, and the
final ``scale`` S and ``bias`` B::

    X₀ = X,   Xᵢ = Xᵢ₋₁ ⋆ Kᵢ + bᵢ,   result = S · Xₙ + B

or, with ``combine``, the kernels side by side (:mod:`convtool.filtering.combine`):
``result = S · combine(X ⋆ K₁ + b₁, …, X ⋆ Kₙ + bₙ) + B``.

all in floating point, with no rounding or clipping between the steps (the pixel policy in
:mod:`convtool.io.pixels` maps, rounds and clamps once, when writing).

A step may also be per-channel kernels or a layer (:class:`~convtool.kernels.layer.Layer`):
Xᵢ[o] = Σ_c Xᵢ₋₁[c] ⋆ Kᵢ[o, c] + bᵢ[o] (:func:`~convtool.core.layer.correlate_layer`), which
may change the number of channels. Such a chain filters the colour as it is stored and keeps
alpha (cropped with ``border="valid"``): premultiplying has no meaning for a step that mixes
channels, so an image with transparency needs ``alpha="keep"``.

Alpha. With ``alpha="auto"`` (the default) the colour is filtered premultiplied by alpha, so
that the colour hidden under transparent pixels never bleeds into the result, and alpha is
filtered as the coverage of each kernel: with K / ΣK, or with |K| / Σ|K| for a zero-sum K
(a derivative, whose ΣK = 0 would make every flat region transparent)::

    Pᵢ = Pᵢ₋₁ ⋆ Kᵢ + bᵢ · Aᵢ     P₀ = α · X    (premultiplied colour)
    Aᵢ = Aᵢ₋₁ ⋆ Wᵢ               A₀ = α        Wᵢ = Kᵢ / ΣKᵢ, or |Kᵢ| / Σ|Kᵢ| when ΣKᵢ = 0
    colour = S · Pₙ / Aₙ + B  (0 where Aₙ ≤ 0),    alpha = Aₙ clamped to [0, 1]

For a kernel that sums to 1 this is the usual premultiplied filter (P′ / α′, as ImageMagick's
``-blur`` and ``-morphology Convolve`` compute it); the gain of a kernel that does not sum to 1
stays in the colour, as without alpha, and an opaque image is filtered as if it had none.

``alpha="keep"`` leaves alpha as it was, only cropped with ``border="valid"``, and filters the
colour as it is stored (the hidden colour bleeds in). With ``alpha="filter"`` alpha is filtered
with the kernels alone (no bias, no scale), and the colour premultiplied by it::

    Pᵢ = Pᵢ₋₁ ⋆ Kᵢ + bᵢ · Cᵢ     P₀ = α · X    (premultiplied colour)
    Cᵢ = Cᵢ₋₁ ⋆ |Kᵢ| / Σ|Kᵢ|     C₀ = α        (opaque share of each kernel's footprint)
    colour = S · Pₙ / Cₙ + B  (0 where Cₙ = 0),    alpha = α ⋆ K₁ ⋆ … ⋆ Kₙ

For kernels without negative entries (blurs) Cₙ is the filtered alpha, so this is the usual
premultiplied filter (``P′/α′``); for an opaque image Cₙ = 1 and the colour is exactly what
``alpha="keep"`` gives, for every kernel. With ``border="constant"`` the outside is opaque
colour ``cval``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convtool.choices import ALPHA_MODES
from convtool.core.borders import chain_size, check_border
from convtool.core.correlate import correlate
from convtool.core.layer import check_channels, correlate_layer
from convtool.errors import UsageError
from convtool.filtering.combine import (
    check_combine,
    combine_responses,
    combined_responses,
    on_one_grid,
)
from convtool.kernels.layer import Layer
from convtool.kernels.origin import Origin, at_origin, check_valid_origin
from convtool.kernels.value import Kernel

Step = Kernel | Layer
"""One step of the chain: a 2-D kernel for every channel, or per-channel kernels or a layer."""


@dataclass(frozen=True)
class Recipe:
    """How to filter: the kernel chain and the options of ``convtool apply``."""

    kernels: tuple[Step, ...]
    border: str = "reflect"
    cval: float = 0.0
    convolve: bool = False
    normalize: bool = False
    scale: float = 1.0
    bias: float = 0.0
    alpha: str = "auto"
    threads: int | None = None
    origin: Origin | None = None
    combine: str | None = None

    def __post_init__(self) -> None:
        if not self.kernels:
            raise UsageError("no kernel given; name at least one with -k SPEC")
        check_border(self.border)
        if self.border == "valid":
            check_valid_origin(self.origin)
        if self.combine is not None:
            check_combine(self.combine)
        if self.has_layers and (self.combine is not None or self.origin is not None):
            raise UsageError(
                "--combine and --origin take 2-D kernels; per-channel kernels and layers are "
                "applied in a chain, each centred: drop the option, or the layer"
            )
        if self.alpha not in ALPHA_MODES:
            raise UsageError(f"unknown alpha mode {self.alpha!r}; choose auto, keep or filter")
        for name, value in (("cval", self.cval), ("scale", self.scale), ("bias", self.bias)):
            if not np.isfinite(value):
                raise UsageError(f"--{name} must be a finite number; got {value!r}")

    @property
    def premultiplies(self) -> bool:
        """Whether an image with alpha is filtered premultiplied (``auto`` and ``filter``)."""
        return self.alpha != "keep"

    @property
    def has_layers(self) -> bool:
        """Whether a step is per-channel kernels or a layer (see the module's docstring)."""
        return any(isinstance(k, Layer) for k in self.kernels)

    def prepared(self) -> tuple[Step, ...]:
        """The kernels as they are applied: normalized (if asked), anchored at ``origin`` (if
        given: scipy's meaning, see :mod:`convtool.kernels.origin`), then flipped (if asked);
        with ``combine``, on one grid (``origin`` and ``combine`` take no layers)."""
        out: list[Step] = []
        for kernel in self.kernels:
            k = kernel.normalized() if self.normalize else kernel
            if isinstance(k, Kernel) and self.origin is not None and self.border != "valid":
                what = f"kernel {k.name!r}"
                k = Kernel(at_origin(k.weights, self.origin, what), k.name, k.bias)
            out.append(k.flipped() if self.convolve else k)
        if self.combine is not None:
            return on_one_grid(tuple(k for k in out if isinstance(k, Kernel)))
        return tuple(out)

    def plain(self) -> tuple[Kernel, ...]:
        """``prepared()`` of a chain without layers (the paths that take 2-D kernels only)."""
        steps = self.prepared()
        kernels = tuple(k for k in steps if isinstance(k, Kernel))
        if len(kernels) != len(steps):
            raise UsageError("per-channel kernels and layers are not taken on this path")
        return kernels

    def output_channels(self, channels: int, what: str = "the input") -> int:
        """The channels the chain makes of ``channels``; a KernelError naming the step whose
        layer takes another count."""
        for number, step in enumerate(self.kernels, 1):
            if isinstance(step, Layer):
                after = (
                    f" after the first {number - 1} kernels" if number > 2 else " after one kernel"
                )
                check_channels(step, channels, what + (after if number > 1 else ""))
                channels = step.outputs
        return channels


def filter_planes(
    data: np.ndarray, alpha: np.ndarray | None, recipe: Recipe
) -> tuple[np.ndarray, np.ndarray | None]:
    """Filter colour planes (H, W[, C]) and alpha (H, W) or None as ``recipe`` says.

    The result keeps ``data``'s float type (float32 images, float64 matrices); with
    ``border="valid"`` both shrink by the kernel sizes − 1 (a kept alpha is cropped to the
    pixels each result is centred on).
    """
    if recipe.has_layers:
        return _filter_layers(data, alpha, recipe)
    kernels = recipe.plain()
    if recipe.combine is not None:
        return _filter_combined(data, alpha, kernels, recipe)
    if alpha is None or keeps_alpha(alpha, recipe):
        out = data
        for k in kernels:
            out = _correlate(out, k.weights, recipe, recipe.cval)
            if k.bias:
                out = out + out.dtype.type(k.bias)
        return scale_bias(out, recipe), None if alpha is None else crop_alpha(
            alpha, kernels, recipe
        )
    return _filter_premultiplied(data, alpha, kernels, recipe)


def _filter_combined(
    data: np.ndarray, alpha: np.ndarray | None, kernels: tuple[Kernel, ...], recipe: Recipe
) -> tuple[np.ndarray, np.ndarray | None]:
    """The branches of ``--combine`` (kernels on one grid), as :func:`filter_planes` returns."""
    if alpha is None or keeps_alpha(alpha, recipe):
        out = combined_responses(
            data,
            kernels,
            str(recipe.combine),
            border=recipe.border,
            cval=recipe.cval,
            threads=recipe.threads,
        )
        kept = None if alpha is None else crop_alpha(alpha, kernels[:1], recipe)
        return scale_bias(out, recipe), kept
    planes = combined_step(premultiplied_planes(data, alpha), kernels, recipe)
    return straight_planes(planes, recipe)


def combined_step(
    planes: Premultiplied, kernels: tuple[Kernel, ...], recipe: Recipe
) -> Premultiplied:
    """The branches of ``--combine`` on premultiplied planes: each branch's straight colour
    (P / C), combined; coverage and alpha the smallest of the branches' (each pixel as opaque
    as its least covered branch); returned premultiplied again, for :func:`straight_planes`."""
    colours, coverages, alphas = [], [], []
    for k in kernels:
        p, c, a = premultiplied_step(planes, k, recipe)
        c3 = c[..., np.newaxis] if p.ndim == 3 else c
        colour = np.zeros_like(p)
        np.divide(p, c3, out=colour, where=c3 > 0)
        colours.append(colour)
        coverages.append(c)
        alphas.append(a)
    coverage = np.minimum.reduce(coverages)
    cov3 = coverage[..., np.newaxis] if colours[0].ndim == 3 else coverage
    combined = combine_responses(colours, str(recipe.combine)) * cov3
    return combined, coverage, np.minimum.reduce(alphas)


def _filter_layers(
    data: np.ndarray, alpha: np.ndarray | None, recipe: Recipe
) -> tuple[np.ndarray, np.ndarray | None]:
    """A chain with per-channel kernels or layers: the colour as stored, alpha kept."""
    if not keeps_alpha(alpha, recipe):
        raise UsageError(
            "per-channel kernels and layers filter the colour as it is stored, and this image "
            "has transparency: add --alpha keep (alpha is kept, the colour under transparent "
            "pixels filtered too), or remove the alpha channel"
        )
    recipe.output_channels(data.shape[2] if data.ndim == 3 else 1)
    steps = recipe.prepared()
    out = data
    for k in steps:
        if isinstance(k, Layer):
            out = correlate_layer(
                out, k, border=recipe.border, cval=recipe.cval, threads=recipe.threads
            )
            continue
        out = _correlate(out, k.weights, recipe, recipe.cval)
        if k.bias:
            out = out + out.dtype.type(k.bias)
    return scale_bias(out, recipe), None if alpha is None else crop_alpha(alpha, steps, recipe)


def keeps_alpha(alpha: np.ndarray | None, recipe: Recipe) -> bool:
    """Whether the colour is filtered as it is and alpha kept: no alpha, ``alpha="keep"``, or
    ``auto`` on an opaque image (where premultiplying changes nothing: Aₙ = 1)."""
    if alpha is None or recipe.alpha == "keep":
        return True
    if recipe.alpha != "auto":
        return False
    opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind == "u" else 1.0
    return bool(np.all(alpha == opaque))


def alpha_weights(kernel: Kernel) -> np.ndarray:
    """Wᵢ, what ``alpha="auto"`` filters alpha with: K / ΣK, or |K| / Σ|K| for a zero-sum K.

    Both sum to 1, so alpha stays the share of the kernel's footprint that is opaque.
    """
    weights = kernel.weights
    if not kernel.is_zero_sum:
        return weights / weights.sum()
    magnitude = np.abs(weights)
    total = magnitude.sum()
    return magnitude / total if total else magnitude


def _filter_premultiplied(
    data: np.ndarray, alpha: np.ndarray, kernels: tuple[Kernel, ...], recipe: Recipe
) -> tuple[np.ndarray, np.ndarray]:
    planes = premultiplied_planes(data, alpha)
    for k in kernels:
        planes = premultiplied_step(planes, k, recipe)
    return straight_planes(planes, recipe)


Premultiplied = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(P, C, α′): premultiplied colour (H, W[, C]), coverage (H, W) and filtered alpha (H, W);
with ``alpha="auto"`` C and α′ are one plane, Aᵢ."""


def premultiplied_planes(data: np.ndarray, alpha: np.ndarray) -> Premultiplied:
    """P₀ = α · X, C₀ = α, α′₀ = α: where ``auto`` and ``filter`` start (pixel by pixel)."""
    a = alpha.astype(data.dtype, copy=False)
    a3 = a[..., np.newaxis] if data.ndim == 3 else a
    return data * a3, a, a


def premultiplied_step(planes: Premultiplied, k: Kernel, recipe: Recipe) -> Premultiplied:
    """One kernel of the premultiplied chain, with ``recipe.border`` (``valid`` on a band that
    is already extended: the streamed path of :mod:`convtool.stream.apply` calls it so)."""
    premultiplied, coverage, filtered_alpha = planes
    premultiplied = _correlate(premultiplied, k.weights, recipe, recipe.cval)
    if recipe.alpha == "auto":
        coverage = filtered_alpha = _correlate(coverage, alpha_weights(k), recipe, 1.0)
    else:
        magnitude = np.abs(k.weights)
        total = magnitude.sum()
        coverage = _correlate(coverage, magnitude / total if total else magnitude, recipe, 1.0)
        filtered_alpha = _correlate(filtered_alpha, k.weights, recipe, 1.0)
    if k.bias:
        cov3 = coverage[..., np.newaxis] if premultiplied.ndim == 3 else coverage
        premultiplied = premultiplied + premultiplied.dtype.type(k.bias) * cov3
    return premultiplied, coverage, filtered_alpha


def straight_planes(planes: Premultiplied, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Colour = S · P / C + B (0 where C ≤ 0) and the filtered alpha (pixel by pixel); with
    ``auto`` alpha is C clamped to [0, 1]."""
    premultiplied, coverage, filtered_alpha = planes
    cov3 = coverage[..., np.newaxis] if premultiplied.ndim == 3 else coverage
    colour = np.zeros_like(premultiplied)
    np.divide(premultiplied, cov3, out=colour, where=cov3 > 0)
    if recipe.alpha == "auto":
        filtered_alpha = np.clip(coverage, 0, 1)
    return scale_bias(colour, recipe), filtered_alpha


def _correlate(x: np.ndarray, weights: np.ndarray, recipe: Recipe, cval: float) -> np.ndarray:
    return correlate(x, weights, border=recipe.border, cval=cval, threads=recipe.threads)


def scale_bias(x: np.ndarray, recipe: Recipe) -> np.ndarray:
    """``S · x + B``, the last step of the chain, in ``x``'s float type."""
    if recipe.scale != 1.0:
        x = x * x.dtype.type(recipe.scale)
    if recipe.bias != 0.0:
        x = x + x.dtype.type(recipe.bias)
    return x


def crop_alpha(alpha: np.ndarray, kernels: tuple[Step, ...], recipe: Recipe) -> np.ndarray:
    """Alpha at the pixels a ``valid`` chain's results are centred on (unchanged otherwise)."""
    if recipe.border != "valid":
        return alpha
    top = sum(k.shape[0] // 2 for k in kernels)
    left = sum(k.shape[1] // 2 for k in kernels)
    height, width = chain_size(alpha.shape[:2], (k.shape for k in kernels), recipe.border)
    return np.ascontiguousarray(alpha[top : top + height, left : left + width])
