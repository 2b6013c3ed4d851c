"""``convtool apply`` for images larger than memory: TIFF/BigTIFF and ``.npy`` in bands.

When an image would not fit (see :func:`convtool.stream.probe.should_stream`), ``convtool
apply`` reads it band by band (:mod:`convtool.stream.engine`), filters each band with its halo,
and writes the result band by band to a TIFF (tiled when compressed, BigTIFF past 4 GB) or
``.npy`` file — atomically, as every output. The pixel policy is :mod:`convtool.io.pixels`'s
own, applied to each band: samples to [0, 1] (``tiff_planes``), ``--gray`` (``to_gray``),
then map, round, clamp (``stored_samples``); ``--map rescale`` takes a first pass for the
global min and max. The kernel chain is :mod:`convtool.filtering`'s: each kernel, its file's
bias, then ``--scale`` and ``--bias``; a kept alpha channel rides along unfiltered (cropped
for ``valid``), and with ``--alpha auto`` (the default) or ``filter`` each band carries the
premultiplied colour, its coverage and the filtered alpha through ``filtering``'s own steps.
The clipping note (:mod:`convtool.filtering.clipping`) adds up the bands' counts and comes after the
file is written. The result is the in-memory one: stored integers within one level (float
rounding), floats within 1e-6.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from convtool.core.correlate import correlate
from convtool.errors import ImageError, UsageError, quoted
from convtool.filtering.chain import (
    Recipe,
    combined_step,
    premultiplied_planes,
    premultiplied_step,
    scale_bias,
    straight_planes,
)
from convtool.filtering.clipping import Clipping
from convtool.filtering.combine import combined_responses
from convtool.io.files import atomic_file
from convtool.io.formats import check_lossless
from convtool.io.matrix import NpyReader, NpyWriter, matrix_picture
from convtool.io.picture import Picture
from convtool.io.pixels import colors_of, stored_samples, to_gray
from convtool.io.plan import OutputPlan, plan_output
from convtool.io.tiff import (
    BIGTIFF_THRESHOLD,
    TiffReader,
    tiff_metadata,
    tiff_options,
    tiff_photometric,
    tiff_planes,
    write_tiff,
)
from convtool.kernels.value import Kernel
from convtool.stream.engine import Stage, extrema, iter_stage_bands
from convtool.stream.probe import STREAM_FORMATS, default_band_memory
from convtool.stream.sizes import (
    Geometry,
    format_bytes,
    plan_band_rows,
)

TIFF_TILE = 256
"""Streamed TIFF outputs are written in tiles of this size when compressed (smaller, down to
16, when a row of tiles would take more than a quarter of the memory budget)."""


@dataclass
class _Source:
    reader: Any
    picture: Picture  # a one-row picture: format, depth, colours, metadata for plan_output
    prepare: Callable[[np.ndarray], np.ndarray]  # file rows → colour planes (+ alpha last)
    colour: int  # colour channels; an alpha channel follows when picture.alpha is set
    observers: list[Callable[[Picture], None]] = field(default_factory=list)
    """Called with each band of rows as the pixel policy reads it, before it is filtered."""


def _open_source(source: str, gray: bool, premultiply: bool, page: int = 0) -> _Source:
    path = Path(source)
    if path.suffix.lower() == ".npy":
        reader = NpyReader(path)
        observers: list[Callable[[Picture], None]] = []

        def matrix_rows(rows: np.ndarray) -> np.ndarray:
            picture = matrix_picture(rows, "NPY", source)
            picture = to_gray(picture) if gray else picture
            for observe in observers:
                observe(picture)
            return picture.data

        first = matrix_picture(reader.read_rows(0, 1), "NPY", source)
        first = to_gray(first) if gray else first
        return _Source(reader, first, matrix_rows, first.channels, observers)
    return _open_tiff(source, gray, premultiply, page)


def _open_tiff(source: str, gray: bool, premultiply: bool, index: int = 0) -> _Source:
    reader = TiffReader(source, index)
    page = reader.page
    photometric = tiff_photometric(page)
    extrasamples = tuple(int(e) for e in page.extrasamples)
    colormap = page.colormap
    tags = {tag.code: tag.value for tag in page.tags.values()}
    metadata, _ = tiff_metadata(tags)

    def picture_of(rows: np.ndarray) -> Picture:
        data, alpha, depth = tiff_planes(rows, photometric, extrasamples, colormap, source)
        colors = colors_of(data)
        mode = colors + ("A" if alpha is not None else "") + {8: "", 16: ";16", 32: ";F"}[depth]
        picture = Picture(
            data=data,
            alpha=alpha,
            integer_stored=depth in (8, 16),
            depth=depth,
            format="TIFF",
            mode=mode,
            colors=colors,
            metadata=metadata,
            name=source,
        )
        return to_gray(picture) if gray else picture

    observers: list[Callable[[Picture], None]] = []

    def tiff_rows(rows: np.ndarray) -> np.ndarray:
        picture = picture_of(rows)
        for observe in observers:
            observe(picture)
        if picture.alpha is None:
            return picture.data
        if premultiply:  # P, coverage, filtered alpha: see filtering.premultiplied_planes
            p, c, a = premultiplied_planes(picture.data, picture.alpha)
            return np.concatenate([p, c[..., np.newaxis], a[..., np.newaxis]], axis=2)
        return np.concatenate([picture.data, picture.alpha[..., np.newaxis]], axis=2)

    try:
        first = picture_of(reader.read_rows(0, 1))
    except Exception:
        reader.close()
        raise
    return _Source(reader, first, tiff_rows, first.channels, observers)


def _stages(recipe: Recipe, colour: int, alpha: bool) -> list[Stage]:
    """Each kernel of the recipe on the colour planes (plus its file's bias); alpha cropped, or
    with ``--alpha filter`` the premultiplied step on (P, coverage, alpha)."""
    stages = []
    premultiplied = alpha and recipe.premultiplies
    valid = replace(recipe, border="valid", origin=None)
    if recipe.combine is not None:
        return [_combined_stage(recipe, valid, colour, alpha)]
    for kernel in recipe.plain():
        kh, kw = (int(n) for n in kernel.weights.shape)
        if premultiplied:
            apply = functools.partial(_premultiplied_stage, kernel=kernel, recipe=valid)
            fill = np.array([recipe.cval] * colour + [1.0, 1.0])
        else:
            apply = functools.partial(
                _stage,
                weights=kernel.weights,
                bias=kernel.bias,
                colour=colour if alpha else None,
                threads=recipe.threads,
            )
            fill = np.float64(recipe.cval)
        stages.append(Stage((kh, kw), apply, fill))
    return stages


def _combined_stage(recipe: Recipe, valid: Recipe, colour: int, alpha: bool) -> Stage:
    """``--combine``: every kernel (on one grid) in one stage, as ``filtering`` combines them."""
    kernels = recipe.plain()
    if alpha and recipe.premultiplies:
        fill = np.array([recipe.cval] * colour + [1.0, 1.0])
        apply = functools.partial(_combined_premultiplied, kernels=kernels, recipe=valid)
    else:
        fill = np.float64(recipe.cval)
        apply = functools.partial(
            _combined_band, kernels=kernels, recipe=valid, colour=colour if alpha else None
        )
    return Stage(kernels[0].shape, apply, fill)


def _combined_band(
    band: np.ndarray, *, kernels: tuple[Kernel, ...], recipe: Recipe, colour: int | None
) -> np.ndarray:
    planes = band if colour is None else band[..., :colour]
    out = combined_responses(
        planes, kernels, str(recipe.combine), border="valid", cval=0.0, threads=recipe.threads
    )
    if colour is None:
        return out
    h, w = out.shape[:2]
    top, left = kernels[0].shape[0] // 2, kernels[0].shape[1] // 2
    kept = band[top : top + h, left : left + w, colour:]
    return np.concatenate([out, kept.astype(out.dtype)], axis=2)


def _combined_premultiplied(
    band: np.ndarray, *, kernels: tuple[Kernel, ...], recipe: Recipe
) -> np.ndarray:
    planes = (band[..., :-2], band[..., -2], band[..., -1])
    p, c, a = combined_step(planes, kernels, recipe)
    return np.concatenate([p, c[..., np.newaxis], a[..., np.newaxis]], axis=2)


def _stage(
    band: np.ndarray, *, weights: np.ndarray, bias: float, colour: int | None, threads: int | None
) -> np.ndarray:
    """One kernel on an extended band: colour ⋆ K + bias; alpha (after ``colour``) cropped to
    the pixels each result is centred on, as ``filtering`` keeps it."""
    planes = band if colour is None else band[..., :colour]
    out = correlate(planes, weights, border="valid", threads=threads)
    if bias:
        out += out.dtype.type(bias)
    if colour is None:
        return out
    h, w = out.shape[:2]
    top, left = weights.shape[0] // 2, weights.shape[1] // 2
    kept = band[top : top + h, left : left + w, colour:]
    return np.concatenate([out, kept.astype(out.dtype)], axis=2)


def _premultiplied_stage(band: np.ndarray, *, kernel: Kernel, recipe: Recipe) -> np.ndarray:
    """``filtering.premultiplied_step`` on an extended band of (P..., coverage, alpha)."""
    planes = (band[..., :-2], band[..., -2], band[..., -1])
    p, c, a = premultiplied_step(planes, kernel, recipe)
    return np.concatenate([p, c[..., np.newaxis], a[..., np.newaxis]], axis=2)


def run_streamed(
    source: str,
    target: Path | None,
    fmt: str,
    *,
    recipe: Recipe,
    depth: int | None,
    map: str | None,
    gray: bool,
    compress_level: int | None,
    memory: int | None,
    notes: Callable[[str, str], None],
    lossless: bool = False,
    pages: tuple[int, ...] = (0,),
) -> None:
    """Filter ``source`` into ``target`` band by band (what ``convtool apply`` does in memory).
    ``lossless`` is ``--lossless``, refused as in memory (no streamed format has two modes);
    ``pages``: the pages of a multi-page TIFF (0-based), each filtered in bands in turn into
    one TIFF."""
    if target is None:
        raise UsageError(
            f"{quoted(source)}: the image is filtered in bands (it is too large for memory, or "
            "--memory asks for it), which needs an output file: give -o FILE.tif or FILE.npy"
        )
    if lossless:
        check_lossless(fmt)
    if recipe.has_layers:
        raise UsageError(
            f"{quoted(source)}: the image is filtered in bands (it is too large for memory, or "
            "--memory asks for it), and per-channel kernels and layers are applied to whole "
            "images only; raise --memory, or filter a smaller image"
        )
    if fmt not in STREAM_FORMATS:
        raise ImageError(
            f"{quoted(target)}: the image is filtered in bands (it is too large for memory, or "
            f"--memory asks for it), and {fmt} cannot be written in bands; write .tif or .npy"
        )
    if len(pages) > 1:
        if fmt != "TIFF":
            raise ImageError(
                f"{quoted(target)}: {len(pages)} pages are filtered in bands, into a multi-page "
                "TIFF; "
                "write .tif, or pick one page with --page N"
            )
        _run_pages(source, target, pages, recipe, depth, map, gray, compress_level, memory, notes)
        return
    src = _open_source(source, gray, premultiply=recipe.premultiplies, page=pages[0])
    try:
        _run(src, source, target, fmt, recipe, depth, map, compress_level, memory, notes)
    finally:
        close = getattr(src.reader, "close", None)
        if close is not None:
            close()


def _run_pages(
    source: str,
    target: Path,
    pages: tuple[int, ...],
    recipe: Recipe,
    depth: int | None,
    map: str | None,
    gray: bool,
    compress_level: int | None,
    memory: int | None,
    notes: Callable[[str, str], None],
) -> None:
    """Pages of a TIFF filtered in bands, one after the other, into one multi-page TIFF
    (BigTIFF when float32 pages of the first one's size would pass 4 GiB)."""
    import tifffile

    with atomic_file(target) as fp:
        tw: Any = None
        for index in pages:
            src = _open_source(source, gray, premultiply=recipe.premultiplies, page=index)
            try:
                if tw is None:
                    page_bytes = int(np.prod(src.reader.shape)) * 4
                    bigtiff = page_bytes * len(pages) > BIGTIFF_THRESHOLD
                    tw = tifffile.TiffWriter(fp, bigtiff=bigtiff)
                _run(
                    src,
                    source,
                    target,
                    "TIFF",
                    recipe,
                    depth,
                    map,
                    compress_level,
                    memory,
                    notes,
                    out=tw,
                )
            finally:
                src.reader.close()
        if tw is not None:
            tw.close()


def _run(
    src: _Source,
    source: str,
    target: Path,
    fmt: str,
    recipe: Recipe,
    depth: int | None,
    map: str | None,
    compress_level: int | None,
    memory: int | None,
    notes: Callable[[str, str], None],
    out: Any = None,
) -> None:
    """One source filtered into ``target``, or into ``out``: an open TiffWriter taking this
    page of several."""
    picture = src.picture
    alpha = picture.alpha is not None
    premultiplied = alpha and recipe.premultiplies
    plan = plan_output(picture, fmt, depth=depth, map=map)
    clipping = Clipping.of(recipe, plan)
    stages = _stages(recipe, src.colour, alpha)
    shape = tuple(src.reader.shape)
    geo = Geometry.of(shape, stages, recipe.border)
    height, width = geo.heights[-1], geo.widths[-1]
    budget = memory if memory is not None else default_band_memory()
    channels = src.colour + alpha + premultiplied
    band_rows, tile = _band_layout(src, plan, stages, recipe.border, fmt, channels, width, budget)
    notes(
        source,
        f"{quoted(source)}: {shape[1]}x{shape[0]} filtered in bands of {band_rows} rows "
        f"(memory budget {format_bytes(budget)})",
    )
    for message in plan.notes:
        notes(source, message)

    if clipping is not None:  # the input's range, for the clipping note
        src.observers.append(clipping.see_input)

    stored = _stored_bands(src, stages, recipe, plan, band_rows, clipping, fmt)  # lazy
    stored_channels = _stored_channels(plan, src.colour, alpha)
    with contextlib.ExitStack() as stack:
        fp = out if out is not None else stack.enter_context(atomic_file(target))
        if fmt == "TIFF":
            out_shape = (height, width) + ((stored_channels,) if stored_channels > 1 else ())
            options = tiff_options(plan, picture.metadata, compress_level)
            write_tiff(fp, stored, out_shape, _stored_dtype(plan), tile=tile, **options)
        else:
            _write_npy(fp, stored, height)
    note = None if clipping is None else clipping.note()
    if note is not None:
        notes(source, note)


def _stored_bands(
    src: _Source,
    stages: list[Stage],
    recipe: Recipe,
    plan: OutputPlan,
    band_rows: int,
    clipping: Clipping | None,
    fmt: str,
) -> Iterator[tuple[int, np.ndarray]]:
    """The stored samples of each band of the result, in order (a first pass over the bands
    finds the extent for ``--map rescale``); the clipping counted on the way."""
    picture = src.picture
    alpha = picture.alpha is not None
    premultiplied = alpha and recipe.premultiplies

    def bands() -> Iterator[tuple[int, np.ndarray]]:
        return iter_stage_bands(
            src.reader, stages, border=recipe.border, band_rows=band_rows, prepare=src.prepare
        )

    def planes_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A band's colour (scaled, biased) and alpha, as filter_planes returns them."""
        if premultiplied:
            return straight_planes((rows[..., :-2], rows[..., -2], rows[..., -1]), recipe)
        if alpha:
            return scale_bias(rows[..., : src.colour], recipe), rows[..., -1]
        return scale_bias(rows, recipe), None

    extent = None
    if plan.map == "rescale":
        extent = extrema((start, planes_of(rows)[0]) for start, rows in bands())

    for start, rows in bands():
        band = picture.with_planes(*planes_of(rows))
        if clipping is not None:
            clipping.count(band, plan)
        samples = stored_samples(band, plan, extent=extent)
        if fmt == "TIFF" and samples.ndim == 3 and samples.shape[2] == 1:
            samples = samples[..., 0]
        yield start, samples


def _write_npy(fp: Any, bands: Iterator[tuple[int, np.ndarray]], height: int) -> None:
    """Bands of stored samples into a ``.npy`` file of ``height`` rows (the first band tells
    the width, channels and dtype)."""
    writer: NpyWriter | None = None
    for start, samples in bands:
        if writer is None:
            writer = NpyWriter(fp, (height, *samples.shape[1:]), samples.dtype)
        writer.write_rows(start, samples)


def _stored_channels(plan: OutputPlan, colour: int, alpha: bool) -> int:
    if plan.is_matrix:
        return colour + (alpha and plan.alpha)
    return {"L": 1, "RGB": 3, "CMYK": 4}[plan.colors] + int(plan.alpha)


def _stored_dtype(plan: OutputPlan) -> Any:
    if plan.is_matrix:
        return np.float32 if plan.depth == 32 else np.float64
    return {8: np.uint8, 16: np.uint16, 32: np.float32}[plan.depth]


def _band_layout(
    src: _Source,
    plan: OutputPlan,
    stages: list[Stage],
    border: str,
    fmt: str,
    channels: int,
    width: int,
    budget: int,
) -> tuple[int, int]:
    """(band rows, TIFF tile side) within ``budget`` bytes: the engine's bands, the stored
    samples of a band, and a row of TIFF tiles being assembled."""
    itemsize = 8 if src.picture.data.dtype == np.float64 else 4
    stored_row = width * _stored_channels(plan, src.colour, src.picture.alpha is not None)
    stored_row *= {8: 1, 16: 2, 32: 4, 64: 8}[plan.depth]
    tile_row = 2 * stored_row  # a row of tiles, and its assembly
    tile = TIFF_TILE
    while tile > 16 and tile * tile_row > budget // 4:
        tile //= 2
    shape = tuple(src.reader.shape)
    band_rows = plan_band_rows(
        (*shape[:2], channels),
        stages,
        border,
        budget,
        channels=channels,
        itemsize=itemsize,
        read_itemsize=np.dtype(src.reader.dtype).itemsize + itemsize,
        slack_rows=int(getattr(src.reader, "slack_rows", 0)),
        row_overhead=width * channels * 8 + stored_row,
        fixed_overhead=(tile * tile_row if fmt == "TIFF" else 0)
        + int(getattr(src.reader, "buffer_bytes", 0)),
    )
    return band_rows, tile
