"""Filtering a picture's planes with a chain of kernels: what ``convtool apply`` computes.

For kernels K₁ … Kₙ (each flipped first with ``convolve=True`` and divided by its sum with
``normalize=True``, zero-sum kernels left as they are), a kernel file's own bias bᵢ, and the
final ``scale`` S and ``bias`` B::

    X₀ = X,   Xᵢ = Xᵢ₋₁ ⋆ Kᵢ + bᵢ,   result = S · Xₙ + B

all in floating point, with no rounding or clipping between the steps (the pixel policy in
:mod:`convtool.imaging` maps, rounds and clamps once, when writing).

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
from convtool.core.borders import check_border
from convtool.core.correlate import correlate, correlate_to_integer
from convtool.core.dispatch import choose_method, separable_factors
from convtool.errors import UsageError
from convtool.imaging import OutputPlan, Picture, to_unit
from convtool.kernels.value import Kernel


@dataclass(frozen=True)
class Recipe:
    """How to filter: the kernel chain and the options of ``convtool apply``."""

    kernels: tuple[Kernel, ...]
    border: str = "reflect"
    cval: float = 0.0
    convolve: bool = False
    normalize: bool = False
    scale: float = 1.0
    bias: float = 0.0
    alpha: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.kernels:
            raise UsageError("no kernel given; name at least one with -k SPEC")
        check_border(self.border)
        if self.alpha not in ALPHA_MODES:
            raise UsageError(f"unknown alpha mode {self.alpha!r}; choose auto, keep or filter")
        for name, value in (("cval", self.cval), ("scale", self.scale), ("bias", self.bias)):
            if not np.isfinite(value):
                raise UsageError(f"--{name} must be a finite number; got {value!r}")

    @property
    def premultiplies(self) -> bool:
        """Whether an image with alpha is filtered premultiplied (``auto`` and ``filter``)."""
        return self.alpha != "keep"

    def prepared(self) -> tuple[Kernel, ...]:
        """The kernels as they are applied: normalized (if asked), then flipped (if asked)."""
        out = []
        for kernel in self.kernels:
            k = kernel.normalized() if self.normalize else kernel
            out.append(k.flipped() if self.convolve else k)
        return tuple(out)


def filter_planes(
    data: np.ndarray, alpha: np.ndarray | None, recipe: Recipe
) -> tuple[np.ndarray, np.ndarray | None]:
    """Filter colour planes (H, W[, C]) and alpha (H, W) or None as ``recipe`` says.

    The result keeps ``data``'s float type (float32 images, float64 matrices); with
    ``border="valid"`` both shrink by the kernel sizes − 1 (a kept alpha is cropped to the
    pixels each result is centred on).
    """
    kernels = recipe.prepared()
    if alpha is None or keeps_alpha(alpha, recipe):
        out = data
        for k in kernels:
            out = _correlate(out, k.weights, recipe, recipe.cval)
            if k.bias:
                out = out + out.dtype.type(k.bias)
        return _scale_bias(out, recipe), None if alpha is None else _crop(alpha, kernels, recipe)
    return _filter_premultiplied(data, alpha, kernels, recipe)


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
    is already extended: the streamed path of :mod:`convtool.stream_apply` calls it so)."""
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
    return _scale_bias(colour, recipe), filtered_alpha


def _correlate(x: np.ndarray, weights: np.ndarray, recipe: Recipe, cval: float) -> np.ndarray:
    return correlate(x, weights, border=recipe.border, cval=cval, threads=recipe.threads)


def _scale_bias(x: np.ndarray, recipe: Recipe) -> np.ndarray:
    if recipe.scale != 1.0:
        x = x * x.dtype.type(recipe.scale)
    if recipe.bias != 0.0:
        x = x + x.dtype.type(recipe.bias)
    return x


def _crop(alpha: np.ndarray, kernels: tuple[Kernel, ...], recipe: Recipe) -> np.ndarray:
    """Alpha at the pixels a ``valid`` chain's results are centred on (unchanged otherwise)."""
    if recipe.border != "valid":
        return alpha
    top = sum(k.shape[0] // 2 for k in kernels)
    left = sum(k.shape[1] // 2 for k in kernels)
    height = alpha.shape[0] - sum(k.shape[0] - 1 for k in kernels)
    width = alpha.shape[1] - sum(k.shape[1] - 1 for k in kernels)
    return np.ascontiguousarray(alpha[top : top + height, left : left + width])


# Fused integer output -------------------------------------------------------------------------


def filter_picture(picture: Picture, recipe: Recipe, plan: OutputPlan) -> Picture:
    """The picture filtered as ``recipe`` says, for writing as ``plan`` says.

    The kernel chain of :func:`filter_planes` on float planes; or, where :func:`fused_kernel`
    finds that the written samples cannot differ from that, the samples themselves computed in
    one pass from the stored ones (``correlate_to_integer``: no float planes, 1/4 of the memory
    of a 4K RGB picture's float planes, and no separate map and quantize passes).
    """
    fused = fused_kernel(picture, recipe, plan)
    if fused is None:
        picture = to_unit(picture)
        data, alpha = filter_planes(picture.data, picture.alpha, recipe)
        return picture.with_planes(data, alpha)
    samples = fused_samples(picture, recipe, fused, plan.map)
    alpha = picture.alpha if plan.alpha else None
    if alpha is not None:
        alpha = _crop(alpha, (fused[0],), recipe)
    return picture.with_planes(samples, alpha)


def fused_samples(
    picture: Picture,
    recipe: Recipe,
    fused: tuple[Kernel, int, int],
    map: str,
    *,
    shift: int = 0,
) -> np.ndarray:
    """The colour samples of the fused pass (``fused`` from :func:`fused_kernel`), ``shift``
    output levels added before the clamp: with ``shift=1`` a 0 is a result below 0 (see
    :mod:`convtool.clipping`). Exact like the pass itself: the shifted bias is a whole number of
    levels too, and :func:`fused_kernel` leaves a level of headroom below 2²⁴."""
    kernel, in_max, out_max = fused
    bias = kernel.bias * recipe.scale + recipe.bias
    if shift:
        bias = (round(bias * out_max) + shift) / out_max
    return correlate_to_integer(
        picture.data,
        kernel.weights,
        border=recipe.border,
        cval=recipe.cval * in_max,
        scale=recipe.scale,
        bias=bias,
        map=map,
        in_max=in_max,
        out_max=out_max,
        method="auto" if picture.data.size <= NUMPY_SAMPLES else "direct",
        threads=recipe.threads,
    )


def fused_levels(picture: Picture, recipe: Recipe, fused: tuple[Kernel, int, int]) -> np.ndarray:
    """The fused pass's sums before it rounds and clamps them, in output levels: whole numbers
    (``fused_kernel`` keeps them below 2²⁴, where float32 holds every integer), so that one
    pass tells the samples clamped at either end apart (float32: 4 bytes a sample)."""
    kernel, in_max, out_max = fused
    folded = kernel.weights * (recipe.scale * out_max / in_max)
    levels = correlate(
        picture.data,
        folded,
        border=recipe.border,
        cval=recipe.cval * in_max,
        method="auto",  # direct sums or numpy's for small work (``fused_kernel`` saw to it)
        threads=recipe.threads,
    )
    levels += round((kernel.bias * recipe.scale + recipe.bias) * out_max)
    return levels


NUMPY_SAMPLES = 1 << 22
"""Above this many samples the fused pass asks for the numba core (``method="direct"``, the
sums ``auto`` would take there) rather than let ``auto`` use numpy for small work: numpy's
path holds three float32 planes of the picture (12 bytes a sample, against the 2 of the fused
pass's uint8 in and out: 300 MB more for a 4K RGB picture), which is what fusing avoids."""

UNIT_ROUNDOFF = 2.0**-24
"""float32's unit roundoff: a rounded operation is off by at most this much, relatively."""

EXACT_INTEGERS = 2.0**24
"""float32 holds every integer below this exactly."""


def fused_kernel(
    picture: Picture, recipe: Recipe, plan: OutputPlan
) -> tuple[Kernel, int, int] | None:
    """(kernel, input maximum, output maximum) when :func:`filter_picture` may fuse, else None.

    Fused, the output samples are ``rint(Σ K'·s + b')`` with K' = K·S·out/in and
    b' = (bias of K · S + B)·out computed on the stored samples s, ``abs`` and the clamp then
    applied; unfused, the float chain computes the same value from s / in in float32 and
    rounds once at the end. The two are equal for certain when K' and b' (and the constant
    border, cval·in) are integers: the fused sum is exact (every partial sum an integer below
    2²⁴, in any order), the true result an integer, and the float chain's rounding errors,
    bounded below, less than 0.5 away from it. So: one kernel, 8/16-bit samples in, an 8- or
    16-bit image out in the same colours, ``clip`` or ``abs``, alpha kept or absent, a kernel
    the core takes direct (not separable passes or FFTs, whose roundings are other), integers
    as above, and the bound below 0.5. Alpha may be present when it is kept (``keep``, or
    ``auto`` on an opaque image).
    """
    data = picture.data
    if (
        data.dtype.kind != "u"
        or picture.is_matrix
        or plan.is_matrix
        or plan.map not in ("clip", "abs")
        or plan.depth not in (8, 16)
        or plan.colors != picture.colors
        or len(recipe.kernels) != 1
        or not keeps_alpha(picture.alpha, recipe)
    ):
        return None
    (kernel,) = recipe.prepared()
    w = kernel.weights
    if not _takes_direct(data.shape, w):
        return None
    in_max = int(np.iinfo(data.dtype).max)
    out_max = (1 << plan.depth) - 1
    folded = w * (recipe.scale * out_max / in_max)
    bias = (kernel.bias * recipe.scale + recipe.bias) * out_max
    outside = recipe.cval * in_max if recipe.border == "constant" else 0.0
    if not (_integral(folded) and _integral(bias) and _integral(outside)):
        return None
    largest = float(np.abs(folded).sum()) * max(in_max, abs(outside)) + abs(bias)
    if not largest + 1 < EXACT_INTEGERS:  # + 1: a level shifted for counting clipped samples
        return None
    if not _rounding_bound(w, kernel.bias, recipe, out_max) < 0.5:
        return None
    return kernel, in_max, out_max


def _takes_direct(shape: tuple[int, ...], weights: np.ndarray) -> bool:
    """Whether ``correlate``'s ``auto`` sums the taps directly for this image and kernel."""
    kshape = (int(weights.shape[0]), int(weights.shape[1]))
    chosen = choose_method(shape, kshape, "auto")
    if chosen == "separable":
        if separable_factors(weights) is not None:
            return False
        chosen = choose_method(shape, kshape, "nonseparable")
    return chosen == "direct"


def _integral(x: np.ndarray | float) -> bool:
    values = np.asarray(x, dtype=np.float64)
    return bool(np.all(values == np.rint(values)))


def _rounding_bound(weights: np.ndarray, kernel_bias: float, recipe: Recipe, out_max: int) -> float:
    """How far, in output levels, the float32 chain of :func:`filter_planes` followed by the
    map and ``quantize`` can be from the exact result, for a direct kernel.

    With u the unit roundoff, n the nonzero taps and A = Σ|K|·max(1, |cval|) (every value in
    [0, 1], so every partial sum within A): converting the samples and the weights, the
    products and the n − 1 additions are off by at most (n + 2)·u·A; adding the kernel's bias
    b (V = A + |b|) by 2u·V; multiplying by S scales those and adds 2u·|S|·V; adding B adds
    u·(|S|·V + 2|B|); clamping to [0, 1] shrinks errors, and the final multiplication by the
    output maximum adds u·out.
    """
    n = int(np.count_nonzero(weights))
    a = float(np.abs(weights).sum()) * max(1.0, abs(recipe.cval))
    v = a + abs(kernel_bias)
    s, b = abs(recipe.scale), abs(recipe.bias)
    return out_max * UNIT_ROUNDOFF * (s * ((n + 2) * a + 2 * v) + 2 * s * v + s * v + 2 * b + 1)
