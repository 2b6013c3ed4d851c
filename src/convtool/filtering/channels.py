"""What a chain with per-channel kernels or layers makes of a picture's channels.

A layer may change the number of channels: a result with as many as the input keeps its
colours (RGB stays RGB, CMYK stays CMYK), one channel is grey, three are RGB; any other count
is not an image, and is written only where a file holds any number of planes (``.npy``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from convtool.errors import UsageError
from convtool.filtering.chain import Recipe
from convtool.io.picture import Picture

ANY_CHANNELS = ("NPY",)
"""The output formats that hold any number of planes."""


def result_colors(picture: Picture, channels: int, fmt: str) -> str:
    """The colours of a result with ``channels`` channels made from ``picture``, written as
    ``fmt``; a UsageError when no image has that many and ``fmt`` holds only images."""
    if picture.is_matrix:
        return picture.colors
    if channels == picture.channels:
        return picture.colors
    if channels in (1, 3):
        return "L" if channels == 1 else "RGB"
    if fmt in ANY_CHANNELS:
        return "matrix"
    raise UsageError(
        f"{picture.name or 'the input'}: the kernels make {channels} channels of its "
        f"{picture.channels}; an image holds 1 (grey), 3 (RGB) or as many as the input had: "
        "write .npy, which holds any number"
    )


def laid_out(picture: Picture, recipe: Recipe, fmt: str) -> Picture:
    """``picture`` as the chain lays its result out (its channels and colours, the planes a
    read-only stand-in that takes no memory), to plan the output by; ``picture`` itself for a
    chain without layers."""
    if not recipe.has_layers:
        return picture
    channels = recipe.output_channels(picture.channels, picture.name or "the input")
    colors = result_colors(picture, channels, fmt)
    flat = picture.data.ndim == 2 and channels == 1
    shape = picture.data.shape[:2] if flat else (*picture.data.shape[:2], channels)
    stand_in = np.broadcast_to(np.zeros((), picture.data.dtype), shape)
    return replace(picture, data=stand_in, colors=colors)


def with_result(picture: Picture, data: np.ndarray, alpha: np.ndarray | None, fmt: str) -> Picture:
    """``picture`` holding a chain's result planes, its colours those of their channels."""
    channels = int(data.shape[2]) if data.ndim == 3 else 1
    return replace(picture.with_planes(data, alpha), colors=result_colors(picture, channels, fmt))
