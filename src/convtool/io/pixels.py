"""The pixel policy, in one place: stored samples to float planes and back.

Reading turns every source into float planes:

* an **image** becomes ``data`` float32 (H, W, C) in [0, 1] — 8-bit values / 255, 16-bit
  values / 65535, float images as they are — with C = 1 (grey, also for 1-bit and grey
  palettes), 3 (RGB) or 4 (CMYK); gray images are (H, W, 1), never (H, W). The alpha channel
  is split off into ``alpha`` (float32 (H, W) in [0, 1]). The EXIF orientation is applied, so
  the planes are the picture as it is seen on screen.
* a **matrix** (``.npy``, ``.txt``, ``.csv``) becomes ``data`` float64 (H, W) — or (H, W, C)
  for a 3-D ``.npy`` — holding the raw numbers, never scaled or clipped.

Writing converts back in one place (:func:`stored_samples`): ``--map`` (clip, abs, rescale,
none; by default none for float outputs, which hold every value, and clip for 8- and 16-bit
ones), then round to nearest, then clamp to the stored range (:func:`clipped_samples` counts
what the clamp loses). Across kinds the [0, 1] scale is the bridge: an image written to
``.npy``/``.txt`` holds its [0, 1] values, a matrix written as an image maps [0, 1] to
0..max. Colour and alpha are split (:func:`split_alpha`) and merged (:func:`merge_alpha`)
here only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from convtool.choices import (
    OUTPUT_MAPS,
)
from convtool.errors import ImageError, UsageError
from convtool.io.picture import Picture
from convtool.io.plan import OutputPlan

LUMA_601 = (0.299, 0.587, 0.114)
"""ITU-R 601-2 luma weights for R, G, B — the ones Pillow's ``convert("L")`` uses."""


def to_unit(picture: Picture) -> Picture:
    """The picture with float planes: uint8/uint16 samples as float32 / 255 or / 65535 (the
    conversion of reading); a picture with float planes as it is."""
    if picture.data.dtype.kind != "u":
        return picture
    alpha = picture.alpha
    if alpha is not None:
        alpha = _unit_alpha(alpha, int(np.iinfo(alpha.dtype).max))
    return replace(
        picture, data=unit(picture.data, int(np.iinfo(picture.data.dtype).max)), alpha=alpha
    )


def split_alpha(stored: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour planes (H, W, C) and alpha (H, W) from stored samples laid out as ``layout``.

    The one place where alpha is split from colour (:func:`merge_alpha` merges it back).
    """
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    if layout.endswith("A"):
        return stored[..., :-1], stored[..., -1]
    return stored, None


def merge_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Stored colour samples (H, W, C) and alpha (H, W) as one (H, W, C [+ 1]) array."""
    if alpha is None:
        return colour
    return np.concatenate([colour, alpha[..., np.newaxis]], axis=2)


def unit(stored: np.ndarray, maxval: int) -> np.ndarray:
    """Stored integer samples as float32 in [0, 1] (the pixel policy: / 255 or / 65535)."""
    out = np.array(stored, dtype=np.float32, order="C")
    np.divide(out, np.float32(maxval), out=out)
    return out if out.ndim == 3 else out[..., np.newaxis]


def _unit_alpha(stored: np.ndarray | None, maxval: int) -> np.ndarray | None:
    if stored is None:
        return None
    return np.ascontiguousarray(np.asarray(stored, dtype=np.float32) / np.float32(maxval))


COLOURS = {1: "L", 3: "RGB", 4: "CMYK"}
"""What the channels of an image's colour planes are, by their number."""

LAYOUTS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
"""How stored samples (or a matrix's planes) with alpha last are laid out, by their number."""


def colors_of(data: np.ndarray) -> str:
    """``L``, ``RGB`` or ``CMYK``: what the channels of colour planes (H, W, C) are."""
    return COLOURS[data.shape[2]]


def upright(
    data: np.ndarray, alpha: np.ndarray | None, orientation: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the EXIF orientation (1..8) so the planes are the picture as seen on screen."""

    def turn(x: np.ndarray) -> np.ndarray:
        if orientation == 2:
            x = x[:, ::-1]
        elif orientation == 3:
            x = x[::-1, ::-1]
        elif orientation == 4:
            x = x[::-1, :]
        elif orientation == 5:
            x = x.swapaxes(0, 1)
        elif orientation == 6:
            x = np.rot90(x, k=-1)
        elif orientation == 7:
            x = x[::-1, ::-1].swapaxes(0, 1)
        elif orientation == 8:
            x = np.rot90(x, k=1)
        return np.ascontiguousarray(x)

    if orientation not in range(2, 9):
        return data, alpha
    return turn(data), None if alpha is None else turn(alpha)


def to_gray(picture: Picture) -> Picture:
    """One luminance channel, ITU-R 601-2 (``L = 0.299 R + 0.587 G + 0.114 B``, as Pillow).

    CMYK is first turned into RGB as Pillow does (R = (1 − C)(1 − K)...). A colour ICC profile
    is dropped (a grey image cannot carry it); alpha is kept. A 2-D matrix is returned as it
    is; a 3-plane matrix is treated as R, G, B.
    """
    data = picture.data
    if picture.is_matrix:
        if data.ndim == 2:
            return picture
        if data.shape[2] != 3:
            raise ImageError(
                f"{picture.name}: --gray needs 3 planes (R, G, B) in a matrix; this one has "
                f"{data.shape[2]}"
            )
        return replace(picture, data=_luma(data))
    if picture.colors == "L":
        return picture
    if picture.colors == "CMYK":
        data = cmyk_to_rgb(data)
    metadata = picture.metadata
    if metadata.icc_color_space not in (None, "GRAY"):
        metadata = replace(metadata, icc_profile=None)
    return replace(picture, data=_luma(data)[..., np.newaxis], colors="L", metadata=metadata)


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i] for i in range(3))
    w = [rgb.dtype.type(c) for c in LUMA_601]
    return np.ascontiguousarray(w[0] * r + w[1] * g + w[2] * b)


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """CMYK planes in [0, 1] as RGB the way Pillow converts: R = (1 − C)(1 − K), ..."""
    k = 1 - cmyk[..., 3:4]
    return np.ascontiguousarray((1 - cmyk[..., :3]) * k)


def map_values(
    values: np.ndarray,
    map: str,
    *,
    unit_range: bool,
    extent: tuple[float, float] | None = None,
) -> np.ndarray:
    """Apply ``--map`` to results (the colour planes; alpha goes through :func:`map_alpha`).

    * ``clip``: clamp to [0, 1];
    * ``abs``: the magnitude, then (for images) clamp to [0, 1] — a falling edge stays visible;
    * ``rescale``: the global min..max over all planes stretched to [0, 1]; a constant result
      becomes 0;
    * ``none``: the raw values.

    ``unit_range`` is True for image outputs, where ``abs`` also clamps; for matrix outputs
    ``abs`` gives the bare magnitude. ``extent`` gives ``rescale`` the (min, max) of the whole
    result when ``values`` is only a band of it (a first pass found them).
    """
    if map == "none":
        return values
    if map == "abs":
        out = np.abs(values)
        return np.clip(out, 0, 1, out=out) if unit_range else out
    if map == "rescale":
        if extent is not None:
            lo, hi = extent
        else:
            lo, hi = _extent(values)
        if not hi > lo:
            return np.zeros_like(values)
        out = np.subtract(values, values.dtype.type(lo))
        out *= values.dtype.type(1.0 / (hi - lo))
        return out
    if map == "clip":
        return np.clip(values, 0, 1)
    raise UsageError(f"unknown map {map!r}; choose one of {', '.join(OUTPUT_MAPS)}")


def map_alpha(alpha: np.ndarray, map: str) -> np.ndarray:
    """Alpha is clamped to [0, 1] for every map but ``none`` (raw, float outputs only)."""
    return alpha if map == "none" else np.clip(alpha, 0, 1)


def quantize(values: np.ndarray, depth: int) -> np.ndarray:
    """Values in the [0, 1] scale as stored integers: × (2^depth − 1), round to nearest, clamp.

    NaN is stored as 0.
    """
    maxval = (1 << depth) - 1
    scaled = np.multiply(values, np.float32(maxval), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.fmax(scaled, 0, out=scaled)  # fmax and fmin turn NaN into the bound: NaN → 0
    np.fmin(scaled, maxval, out=scaled)
    return scaled.astype(np.uint8 if depth == 8 else np.uint16)


def clipped_samples(picture: Picture, plan: OutputPlan) -> tuple[int, int, int]:
    """(below 0, above the maximum, all) of the colour samples that writing ``picture`` as
    ``plan`` says clamps, counted as :func:`quantize` rounds: the samples lost to clipping.

    A sample is clipped when its level rint(v · max) (after ``abs`` with that map) lies outside
    0..max: −0.4 levels is written as 0 either way and is not counted. For the odd max of 8 and
    16 bits, rint(x) < 0 exactly when x < −0.5, and rint(x) > max when x ≥ max + 0.5 (half to
    even rounds max + 0.5 up). ``rescale``, ``none`` and float outputs clip nothing; NaN is not
    counted. Pixel by pixel, so the counts of bands add up to the picture's.
    """
    colour, _ = _image_planes(to_unit(picture))
    below = above = 0
    if plan.is_matrix or plan.depth not in (8, 16) or plan.map not in ("clip", "abs"):
        return below, above, colour.size
    maxval = np.float32((1 << plan.depth) - 1)
    for top in range(0, colour.shape[0], STORED_BAND_ROWS):
        scaled = np.multiply(colour[top : top + STORED_BAND_ROWS], maxval, dtype=np.float32)
        if plan.map == "abs":
            np.abs(scaled, out=scaled)
        else:
            below += int(np.count_nonzero(scaled < -0.5))
        above += int(np.count_nonzero(scaled >= maxval + np.float32(0.5)))
    return below, above, colour.size


def stored_samples(
    picture: Picture, plan: OutputPlan, *, extent: tuple[float, float] | None = None
) -> np.ndarray:
    """The samples ``plan`` stores for ``picture``: mapped, colour-converted, rounded, clamped.

    Images: (H, W, C [+ alpha]) of uint8, uint16 or float32. Matrices: the mapped values as
    float32 or float64, alpha merged as the last plane (.npy), a grey image without alpha as
    (H, W). Pixel by pixel, so a band of
    rows gives that band of the file; ``extent`` is the whole result's (min, max) for
    ``rescale`` (see :func:`map_values`).
    """
    as_is = _samples_as_they_are(picture, plan)
    if as_is is not None:
        return as_is
    picture = to_unit(picture)
    if plan.is_matrix:
        values = map_values(picture.data, plan.map, unit_range=False, extent=extent)
        dtype = np.float32 if plan.depth == 32 else np.float64
        if picture.alpha is not None and plan.format == "NPY":
            planes = values if values.ndim == 3 else values[..., np.newaxis]
            values = merge_alpha(planes, map_alpha(picture.alpha, plan.map))
        elif not picture.is_matrix and values.ndim == 3 and values.shape[2] == 1:
            values = values[..., 0]  # a grey image is (H, W), as a grey matrix; colour (H, W, C)
        return np.ascontiguousarray(values, dtype=dtype)
    colour, alpha = _image_planes(picture)
    if not plan.alpha:
        alpha = None
    if plan.map == "rescale" and extent is None:
        extent = _extent(colour)
    height = colour.shape[0]
    if height <= STORED_BAND_ROWS:
        return _stored_band(colour, alpha, plan, extent)
    first = _stored_band(colour[:STORED_BAND_ROWS], _rows(alpha, 0), plan, extent)
    stored = np.empty((height, *first.shape[1:]), first.dtype)
    stored[:STORED_BAND_ROWS] = first
    for top in range(STORED_BAND_ROWS, height, STORED_BAND_ROWS):
        rows = slice(top, top + STORED_BAND_ROWS)
        stored[rows] = _stored_band(colour[rows], _rows(alpha, top), plan, extent)
    return stored


STORED_BAND_ROWS = 64
"""Rows mapped and quantized at a time: the float temporaries of a band, not of the image."""


def _rows(alpha: np.ndarray | None, top: int) -> np.ndarray | None:
    return None if alpha is None else alpha[top : top + STORED_BAND_ROWS]


def _extent(values: np.ndarray) -> tuple[float, float]:
    """(min, max) of the values, NaN ignored, as ``rescale`` stretches them ((0, 0) if none)."""
    if not values.size:
        return (0.0, 0.0)
    return (float(np.nanmin(values)), float(np.nanmax(values)))


def _stored_band(
    colour: np.ndarray,
    alpha: np.ndarray | None,
    plan: OutputPlan,
    extent: tuple[float, float] | None,
) -> np.ndarray:
    """Rows of colour (and alpha, when written) as stored: mapped, converted, quantized."""
    colour = map_values(colour, plan.map, unit_range=True, extent=extent)
    if alpha is not None:
        alpha = map_alpha(alpha, plan.map)
    if plan.colors == "RGB" and colour.shape[2] == 4:
        colour = cmyk_to_rgb(colour)
    elif plan.colors == "RGB" and colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    if plan.depth == 32:
        return merge_alpha(
            colour.astype(np.float32), None if alpha is None else alpha.astype(np.float32)
        )
    return merge_alpha(
        quantize(colour, plan.depth), None if alpha is None else quantize(alpha, plan.depth)
    )


def _samples_as_they_are(picture: Picture, plan: OutputPlan) -> np.ndarray | None:
    """The stored samples of a picture that holds uint samples of the plan's depth and colours,
    when ``clip`` or ``abs`` is the map; None otherwise.

    Exactly what mapping and quantizing their values gives: values in [0, 1] are left alone by
    both maps, and ``rint(float32(s / m) · m)`` is ``s`` for every sample s ≤ m = 65535 (the
    two roundings move it by less than 0.01).
    """
    dtype = {8: np.uint8, 16: np.uint16}.get(plan.depth)
    data, alpha = picture.data, picture.alpha if plan.alpha else None
    if (
        picture.is_matrix
        or plan.is_matrix
        or plan.map not in ("clip", "abs")
        or data.dtype != dtype
        or data.ndim != 3
        or plan.colors != picture.colors
        or (alpha is not None and alpha.dtype != dtype)
    ):
        return None
    return merge_alpha(data, alpha)


def _image_planes(picture: Picture) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H, W, C) and alpha (H, W) of a picture about to be written as an image."""
    data = picture.data
    if not picture.is_matrix:
        return (data if data.ndim == 3 else data[..., np.newaxis]), picture.alpha
    if data.ndim == 2:
        return data[..., np.newaxis], None
    layout = LAYOUTS[data.shape[2]]
    return split_alpha(data, layout)


def dtype_holds(dtype: np.dtype, fill: float | np.ndarray) -> bool:
    """Whether ``fill`` (a number, or one per channel) is stored in ``dtype`` exactly."""
    values = np.asarray(fill, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if values.min() < info.min or values.max() > info.max:
                return False
        return bool(np.all(values.astype(dtype).astype(np.float64) == values))
