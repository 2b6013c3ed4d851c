"""The fused integer path: 8/16-bit samples filtered straight to 8/16-bit samples in one pass,
where that gives exactly the samples the float chain of :mod:`convtool.filtering.chain` would."""

from __future__ import annotations

import numpy as np

from convtool.core.correlate import correlate, correlate_to_integer
from convtool.core.dispatch import choose_method, separable_factors
from convtool.filtering.chain import Recipe, crop_alpha, filter_planes, keeps_alpha
from convtool.filtering.channels import with_result
from convtool.io.picture import Picture
from convtool.io.pixels import to_unit
from convtool.io.plan import OutputPlan
from convtool.kernels.value import Kernel


def filter_picture(picture: Picture, recipe: Recipe, plan: OutputPlan) -> Picture:
    """The picture filtered as ``recipe`` says, for writing as ``plan`` says.

    The kernel chain of :func:`filter_planes` on float planes; or, where :func:`fused_kernel`
    finds that the written samples cannot differ from that, the samples themselves computed in
    one pass from the stored ones (``correlate_to_integer``: no float planes, and no separate
    map and quantize passes).
    """
    fused = fused_kernel(picture, recipe, plan)
    if fused is None:
        picture = to_unit(picture)
        data, alpha = filter_planes(picture.data, picture.alpha, recipe)
        return with_result(picture, data, alpha, plan.format)
    samples = fused_samples(picture, recipe, fused, plan.map)
    alpha = picture.alpha if plan.alpha else None
    if alpha is not None:
        alpha = crop_alpha(alpha, (fused[0],), recipe)
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
    :mod:`convtool.filtering.clipping`). Exact like the pass itself: the shifted bias is a whole
    number of levels too, and :func:`fused_kernel` leaves a level of headroom below 2²⁴."""
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
pass's uint8 in and out), which is what fusing avoids."""

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
        or recipe.combine is not None
        or recipe.has_layers
        or not keeps_alpha(picture.alpha, recipe)
    ):
        return None
    (kernel,) = recipe.plain()
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
        if separable_factors(weights, np.float32) is not None:  # float32 planes
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
