"""What the clamp to the stored range loses, and the one note that says so.

An 8- or 16-bit output stores [0, 1]; with the default map (``clip``) a result outside is
clamped. :class:`Clipping` counts the colour samples that are (exactly, as
:func:`convtool.io.pixels.clipped_samples` rounds them) and makes one note per output when more
than :data:`CLIPPED_SHARE` of them are, or any at all when the input is float and holds values
outside [0, 1]. The note says how many and what would keep them. A map asked for with
``--map`` clips without a note, and float outputs (float TIFF, ``.npy``) keep every value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from convtool.filtering.chain import Recipe
from convtool.filtering.fused import (
    NUMPY_SAMPLES,
    filter_picture,
    fused_kernel,
    fused_levels,
    fused_samples,
)
from convtool.io.picture import Picture
from convtool.io.pixels import clipped_samples
from convtool.io.plan import OutputPlan
from convtool.kernels.value import Kernel

CLIPPED_SHARE = 0.01
"""A note when more than this share of an output's colour samples are clipped (1 %)."""


@dataclass
class Clipping:
    """The clipped samples of one output, added up band by band, and the note about them."""

    recipe: Recipe
    below: int = 0
    above: int = 0
    total: int = 0
    low: float = math.inf
    high: float = -math.inf
    """The range of a float input's values (seen by :meth:`see_input`)."""

    @classmethod
    def of(cls, recipe: Recipe, plan: OutputPlan) -> Clipping | None:
        """A counter for an output the default map clips; None when no note can be due."""
        if plan.map_given or plan.is_matrix or plan.map != "clip" or plan.depth not in (8, 16):
            return None
        return cls(recipe)

    def see_input(self, picture: Picture) -> None:
        """Take in the range of a float input's colour values (integer samples are in range)."""
        data = picture.data
        if picture.integer_stored or data.dtype.kind != "f" or not data.size:
            return
        with np.errstate(invalid="ignore"):
            self.low = min(self.low, float(np.nanmin(data)))
            self.high = max(self.high, float(np.nanmax(data)))

    def count(self, picture: Picture, plan: OutputPlan) -> None:
        """Add the clipped samples of a result (or of a band of it) written as ``plan``."""
        below, above, total = clipped_samples(picture, plan)
        self.add(below, above, total)

    def add(self, below: int, above: int, total: int) -> None:
        self.below += below
        self.above += above
        self.total += total

    @property
    def input_out_of_range(self) -> bool:
        return self.low < 0 or self.high > 1

    def due(self, clipped: int, total: int) -> bool:
        """Whether ``clipped`` samples of ``total`` call for the note."""
        if clipped and self.input_out_of_range:
            return True
        return clipped > CLIPPED_SHARE * total

    def note(self) -> str | None:
        """The note, or None when it is not due."""
        clipped = self.below + self.above
        if not self.due(clipped, self.total):
            return None
        sides = ((self.below, "below 0"), (self.above, "above 1"))
        where = ", ".join(f"{n} {side}" for n, side in sides if n)
        if self.input_out_of_range:
            where += f"; the input holds {self.low:.6g} to {self.high:.6g}"
        return (
            f"{clipped} of {self.total} samples ({100 * clipped / self.total:.3g} %) are outside "
            f"[0, 1] and written clipped ({where}); to keep them: "
            f"{_or(self._remedies())}; --map clip clips without this note"
        )

    def _remedies(self) -> list[str]:
        remedies = []
        if self.input_out_of_range:
            remedies.append("a float output (.tif with --depth 32, or .npy)")
        kernels = [k for k in self.recipe.prepared() if isinstance(k, Kernel)]
        sums = [k.weights.sum() for k in kernels if not k.is_zero_sum and not _sums_to_one(k)]
        if sums:
            told = " and ".join(f"{s:.6g}" for s in sums)
            which = "the kernels sum" if len(sums) > 1 else "the kernel sums"
            remedies.append(f"--normalize ({which} to {told})")
        if self.below and any(k.is_zero_sum for k in kernels):
            remedies.append("--map abs (their magnitude)")
        remedies.append("--map rescale (stretched to [0, 1])")
        return remedies


def _sums_to_one(kernel: Kernel) -> bool:
    w = kernel.weights
    return bool(abs(w.sum() - 1) <= 1e-9 * np.abs(w).sum())


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def filter_for_output(
    picture: Picture, recipe: Recipe, plan: OutputPlan
) -> tuple[Picture, OutputPlan]:
    """:func:`convtool.filtering.fused.filter_picture`, and ``plan`` with the clipping note added
    to its notes when one is due.

    On the fused path (integer samples out, no float result) the count is exact too: when more
    than 1 % of the samples are 0 or the maximum — else no note can be due — the unclamped
    sums are formed once more in float32, exact (:func:`~convtool.filtering.fused.fused_levels`); a
    large picture, whose float32 sums would cost 4 bytes a sample, runs the integer pass again
    one level up (a 0 then is a result below 0) and one level down (a maximum is one above it).
    """
    clipping = Clipping.of(recipe, plan)
    if clipping is None:
        return filter_picture(picture, recipe, plan), plan
    clipping.see_input(picture)
    result = filter_picture(picture, recipe, plan)
    fused = fused_kernel(picture, recipe, plan) if result.data.dtype.kind == "u" else None
    if fused is None:
        clipping.count(result, plan)
    else:
        clipping.add(*_fused_clipped(clipping, picture, recipe, fused, result.data))
    note = clipping.note()
    if note is None:
        return result, plan
    return result, replace(plan, notes=(*plan.notes, note))


def _fused_clipped(
    clipping: Clipping,
    picture: Picture,
    recipe: Recipe,
    fused: tuple[Kernel, int, int],
    samples: np.ndarray,
) -> tuple[int, int, int]:
    """(below, above, all) for the fused samples; (0, 0, all) when no note can be due."""
    top = fused[2]
    zeros, tops = int(np.count_nonzero(samples == 0)), int(np.count_nonzero(samples == top))
    if not clipping.due(zeros + tops, samples.size):
        return 0, 0, samples.size
    if samples.size <= NUMPY_SAMPLES:  # one float pass: the sums themselves
        levels = fused_levels(picture, recipe, fused)
        return int(np.count_nonzero(levels < 0)), int(np.count_nonzero(levels > top)), samples.size
    below = above = 0  # two integer passes, each a byte a sample
    if zeros:
        below = int(np.count_nonzero(fused_samples(picture, recipe, fused, "clip", shift=1) == 0))
    if tops:
        shifted = fused_samples(picture, recipe, fused, "clip", shift=-1)
        above = int(np.count_nonzero(shifted == top))
    return below, above, samples.size
