"""Images larger than memory: correlation in horizontal bands with a halo, rows in, rows out.

An output band of rows ``[r0, r1)`` of a kernel kh × kw needs the rows
``r0 − ph … r1 − 1 + (kh − 1 − ph)`` of the image extended by the border mode (ph = kh // 2):
the band plus a halo of kh − 1 rows. Bands in the middle of the image read their halo from the
real neighbouring rows; only rows that fall outside the image are made up by the border mode,
by the same index mapping ``correlate`` uses (scipy.ndimage's definitions)::

    reflect   d c b a | a b c d | d c b a
    mirror    d c b   | a b c d | c b a
    nearest   a a a   | a b c d | d d d
    wrap      b c d   | a b c d | a b c      (the top band reads rows from the bottom)
    constant  k k k   | a b c d | k k k

Each band, extended that way in both directions, is filtered with ``correlate(...,
border="valid")``, which gives exactly the rows and columns of the whole-image result. Kernels
taller than the image and bands thinner than the kernel work: the mapping simply reads the
same source rows several times.

A chain of kernels is streamed stage by stage inside each band: for the last stage's rows the
engine works out which rows of every earlier stage are needed (the sum of the halos, plus the
rows a border mode maps to — e.g. the bottom rows for ``wrap``), computes just those, and
extends each intermediate by the border mode as the whole-image chain does. So a chain equals
``correlate(correlate(X, K1), K2)`` exactly, edges included.

Peak memory is bounded by the band height, which ``memory`` (bytes of image data: source rows,
extended bands, results and their temporaries) chooses; the rest of the image never leaves the
disk. Sources are read by row ranges (a :class:`RowReader`): an ndarray (or anything sliceable
by rows, such as a Zarr array), a ``.npy`` file (:class:`convtool.io.matrix.NpyReader`, plain
file reads rather than a memory map, so the resident set stays bounded) or a TIFF/BigTIFF
(:class:`convtool.io.tiff.TiffReader`, strips or tiles, decoding only the segments a band
needs). Sinks: an array (or ``numpy.lib.format.open_memmap``),
:class:`convtool.io.matrix.NpyWriter`, or :func:`convtool.io.tiff.write_tiff` (BigTIFF when
the data passes 4 GB).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from convtool.choices import BORDER_CODES
from convtool.core.borders import check_border, check_cval
from convtool.core.correlate import KernelLike, as_image_array, correlate, kernel_weights
from convtool.errors import ImageError, UsageError, quoted
from convtool.io.formats import starts_as
from convtool.io.matrix import NpyReader
from convtool.io.pixels import dtype_holds
from convtool.io.tiff import TiffReader
from convtool.kernels.value import Kernel
from convtool.stream.sizes import DEFAULT_MEMORY, Geometry, plan_band_rows
from convtool.twins.borders import border_index

Prepare = Callable[[np.ndarray], np.ndarray]


class RowReader(Protocol):
    """A source of image rows: ``shape`` (H, W[, C]), ``dtype``, and rows by range."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as an array of shape (stop − start, W[, C])."""
        ...


class ArrayReader:
    """Rows of anything sliceable by rows: an ndarray, ``np.memmap``, a Zarr or h5py array.

    A memory map passed here grows the resident set as its pages are touched; for ``.npy``
    files :class:`NpyReader` reads with plain file reads instead.
    """

    slack_rows = 0

    def __init__(self, array: Any) -> None:
        shape = tuple(int(n) for n in array.shape)
        if len(shape) not in (2, 3):
            raise ImageError(
                f"image has {len(shape)} dimensions, shape {shape}; expected (H, W) or (H, W, C)"
            )
        self.array = array
        self.shape = shape
        self.dtype = np.dtype(array.dtype)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop])


def open_reader(source: Any) -> Any:
    """A row reader for ``source``: a path to a ``.npy`` or TIFF file, a reader, or an array."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with open(path, "rb") as fp:
            magic = fp.read(8)
        if starts_as(magic, "NPY"):
            return NpyReader(path)
        if starts_as(magic, "TIFF"):
            return TiffReader(path)
        raise ImageError(
            f"{quoted(path)}: only .npy and TIFF files can be read in bands; convert the image to "
            "TIFF (e.g. with tifffile or `convtool apply IN -k identity -o OUT.tif`)"
        )
    if hasattr(source, "read_rows"):
        return source
    if not hasattr(source, "shape"):
        source = np.asarray(source)
    return ArrayReader(source)


@dataclass(frozen=True)
class Stage:
    """One step of a chain: ``apply`` maps an extended band to its valid result.

    ``apply(band)`` receives rows × (W + kw − 1) columns (the input extended by kh − 1 rows and
    kw − 1 columns) and returns rows − kh + 1 × W, exactly as ``correlate(band, K,
    border="valid")`` does. ``fill`` is what ``border="constant"`` puts outside the image: a
    number, or one per channel.
    """

    shape: tuple[int, int]
    apply: Callable[[np.ndarray], np.ndarray]
    fill: float | np.ndarray = 0.0


def correlation_stage(
    kernel: KernelLike,
    *,
    cval: float = 0.0,
    bias: float = 0.0,
    method: str = "auto",
    threads: int | None = None,
) -> Stage:
    """The stage ``X ⋆ K + bias`` (border ``constant`` extends with ``cval``)."""
    weights = kernel_weights(kernel)

    def apply(band: np.ndarray) -> np.ndarray:
        out = correlate(band, weights, border="valid", method=method, threads=threads)
        if bias:
            out += out.dtype.type(bias)
        return out

    return Stage((int(weights.shape[0]), int(weights.shape[1])), apply, float(cval))


def _as_chain(kernels: Any) -> list[Any]:
    """A single kernel, or a list/tuple of kernels (arrays, Kernel values, spec strings)."""
    if isinstance(kernels, (Kernel, np.ndarray, str)):
        return [kernels]
    chain = isinstance(kernels, (list, tuple)) and len(kernels) > 0
    if chain and all(isinstance(k, (Kernel, np.ndarray, str)) for k in kernels):
        return list(kernels)
    return [kernels]


def extend_index(positions: np.ndarray, n: int, border: str) -> np.ndarray:
    """The source index in [0, n) that each position of the extended line reads; −1 = fill.

    ``twins.borders.border_index`` by border name; ``valid`` reads no position outside.
    """
    x = np.asarray(positions, dtype=np.int64)
    if border == "valid":
        if x.size and (x.min() < 0 or x.max() >= n):
            raise AssertionError("valid bands read only rows inside the image")
        return x
    check_border(border)
    return border_index(x, n, BORDER_CODES[border])


def _runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive values: (position in ``indices``, first value, length).

    A negative value (the fill) is a run of its own.
    """
    if indices.size == 0:
        return []
    breaks = np.flatnonzero((np.diff(indices) != 1) | (indices[:-1] < 0)) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [indices.size]))
    return [(int(s), int(indices[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def _needed_rows(geo: Geometry, r0: int, r1: int) -> list[np.ndarray]:
    """For output rows [r0, r1): the sorted rows of every stage's input that are read."""
    needed = [np.arange(r0, r1, dtype=np.int64)]
    for s in range(len(geo.shapes) - 1, -1, -1):
        kh = geo.shapes[s][0]
        ph = geo.before(s)
        parts = [
            extend_index(
                np.arange(first - ph, first + length + kh - 1 - ph), geo.heights[s], geo.border
            )
            for _, first, length in _runs(needed[0])
        ]
        rows = np.unique(np.concatenate(parts))
        needed.insert(0, rows[rows >= 0])
    return needed


def _extended_band(
    rows: np.ndarray,
    have: np.ndarray,
    first: int,
    length: int,
    s: int,
    geo: Geometry,
    fill: float | np.ndarray,
) -> np.ndarray:
    """Input rows of stage ``s`` for its output rows [first, first+length), extended both ways.

    ``rows`` holds the stage's input rows listed (sorted) in ``have``.
    """
    kh, kw = geo.shapes[s]
    ph, pw = geo.before(s), geo.left(s)
    width = geo.widths[s]
    constant = geo.border == "constant"
    source = extend_index(
        np.arange(first - ph, first + length + kh - 1 - ph), geo.heights[s], geo.border
    )
    local = np.where(source >= 0, np.searchsorted(have, source), -1)
    dtype = rows.dtype
    if constant and not dtype_holds(dtype, fill):
        dtype = np.dtype(np.float64 if dtype == np.float64 else np.float32)
    extra_cols = 0 if geo.border == "valid" else kw - 1
    band = np.empty((local.size, width + extra_cols, *rows.shape[2:]), dtype=dtype)
    body = band[:, pw : pw + width]
    for at, value, count in _runs(local):
        if value < 0:
            body[at : at + count] = fill
        else:
            body[at : at + count] = rows[value : value + count]
    if extra_cols:
        left = extend_index(np.arange(-pw, 0), width, geo.border)
        right = extend_index(np.arange(width, width + kw - 1 - pw), width, geo.border)
        if constant:
            band[:, :pw] = fill
            band[:, pw + width :] = fill
        else:
            band[:, :pw] = body[:, left]
            band[:, pw + width :] = body[:, right]
    return band


def _compute_band(
    reader: Any,
    stages: Sequence[Stage],
    geo: Geometry,
    r0: int,
    r1: int,
    prepare: Prepare | None,
) -> np.ndarray:
    needed = _needed_rows(geo, r0, r1)
    rows = _read(reader, needed[0], prepare)
    for s, st in enumerate(stages):
        have, want = needed[s], needed[s + 1]
        results: list[np.ndarray] = []
        for _, first, length in _runs(want):
            band = _extended_band(rows, have, first, length, s, geo, st.fill)
            results.append(st.apply(band))
            del band
        del rows
        rows = results[0] if len(results) == 1 else np.concatenate(results)
        del results
    return rows


def _read(reader: Any, indices: np.ndarray, prepare: Prepare | None) -> np.ndarray:
    parts = []
    for _, first, length in _runs(indices):
        part = reader.read_rows(first, first + length)
        part = prepare(part) if prepare is not None else part
        parts.append(as_image_array(part))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def iter_stage_bands(
    source: Any,
    stages: Sequence[Stage],
    *,
    border: str = "reflect",
    band_rows: int,
    prepare: Prepare | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Run ``stages`` over ``source`` band by band: yields (first output row, rows), in order.

    The general engine under :func:`correlate_bands`, for steps other than a plain correlation
    (see :class:`Stage`). ``prepare`` is applied to the source rows as they are read (a
    pixel-wise conversion such as scaling to [0, 1]; it may change the channel count).
    """
    check_border(border)
    if not stages:
        raise UsageError("no kernel given; a chain needs at least one kernel")
    if band_rows < 1:
        raise UsageError(f"band_rows must be at least 1; got {band_rows}")
    reader = open_reader(source)
    geo = Geometry.of(tuple(reader.shape), stages, border)
    height = geo.heights[-1]
    for r0 in range(0, height, band_rows):
        r1 = min(height, r0 + band_rows)
        yield r0, _compute_band(reader, stages, geo, r0, r1, prepare)


def correlate_bands(
    source: Any,
    kernels: Any,
    *,
    border: str = "reflect",
    cval: float = 0.0,
    memory: int | None = None,
    band_rows: int | None = None,
    method: str = "auto",
    threads: int | None = None,
    prepare: Prepare | None = None,
    with_bias: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Correlate ``source`` band by band: yields (first row, rows of the result), top to bottom.

    The concatenated bands equal ``correlate(image, K, border=border, cval=cval)`` — for a
    chain ``[K1, K2, ...]``, ``correlate(correlate(image, K1, ...), K2, ...)`` — with the same
    dtype (float32, float64 for float64 data) and the same values within float rounding.

    ``source``: an array (anything sliceable by rows), a path to a ``.npy`` or TIFF file, or a
    reader (:class:`NpyReader`, :class:`TiffReader`). ``kernels``: one kernel (array,
    :class:`~convtool.kernels.value.Kernel`, spec string, nested list) or a list/tuple of arrays,
    Kernels or spec strings applied in order; ``with_bias`` adds each Kernel's own bias right
    after it, as ``convtool apply`` does. ``band_rows`` fixes the band height; otherwise
    ``memory`` (bytes, default :data:`DEFAULT_MEMORY`) chooses it (:func:`plan_band_rows`).
    ``prepare`` converts source rows as they are read (see :func:`iter_stage_bands`).
    """
    check_border(border)
    cval = check_cval(cval)
    stages = []
    for k in _as_chain(kernels):
        bias = k.bias if with_bias and isinstance(k, Kernel) else 0.0
        stages.append(correlation_stage(k, cval=cval, bias=bias, method=method, threads=threads))
    reader = open_reader(source)
    if band_rows is None:
        probe = reader.read_rows(0, 1)
        prepared = as_image_array(prepare(probe) if prepare is not None else probe)
        width = int(reader.shape[1])
        itemsize = 8 if prepared.dtype == np.float64 else 4
        band_rows = plan_band_rows(
            tuple(reader.shape),
            stages,
            border,
            DEFAULT_MEMORY if memory is None else memory,
            channels=max(prepared.size // width, probe.size // width),
            itemsize=itemsize,
            read_itemsize=probe.dtype.itemsize + prepared.dtype.itemsize,
            slack_rows=int(getattr(reader, "slack_rows", 0)),
            fixed_overhead=int(getattr(reader, "buffer_bytes", 0)),
        )
    return iter_stage_bands(reader, stages, border=border, band_rows=band_rows, prepare=prepare)


def correlate_streamed(
    source: Any,
    kernels: Any,
    out: Any = None,
    **options: Any,
) -> Any:
    """Correlate ``source`` in bands into ``out`` (rows assignable, e.g. ``open_memmap``).

    With ``out=None`` the result is returned as one array (useful for checking; for images
    larger than memory give ``out``). Options are those of :func:`correlate_bands`.
    """
    parts: list[np.ndarray] = []
    for start, rows in correlate_bands(source, kernels, **options):
        if out is None:
            parts.append(rows)
        elif hasattr(out, "write_rows"):
            out.write_rows(start, rows)
        else:
            out[start : start + rows.shape[0]] = rows
    if out is None:
        return np.concatenate(parts)
    return out


def extrema(bands: Iterable[tuple[int, np.ndarray]]) -> tuple[float, float]:
    """Global (min, max) over bands, ignoring NaN: the first pass of ``--map rescale``.

    Returns (nan, nan) when every value is NaN.
    """
    lo, hi = math.inf, -math.inf
    for _, rows in bands:
        if rows.size == 0:
            continue
        bmin = float(np.fmin.reduce(rows, axis=None))
        if not math.isnan(bmin):
            lo = min(lo, bmin)
            hi = max(hi, float(np.fmax.reduce(rows, axis=None)))
    if lo > hi:
        return math.nan, math.nan
    return lo, hi
