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
disk. Sources are read by row ranges: an ndarray (or anything sliceable by rows, such as a Zarr
array), a ``.npy`` file (:class:`NpyReader`, plain file reads rather than a memory map, so the
resident set stays bounded) or a TIFF/BigTIFF (:class:`TiffReader`, strips or tiles, decoding
only the segments a band needs). Sinks: an array (or ``numpy.lib.format.open_memmap``),
:class:`NpyWriter`, or :func:`write_tiff` (BigTIFF when the data passes 4 GB).
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
from convtool.core.borders import check_border, check_cval, check_fits, output_shape
from convtool.core.correlate import KernelLike, as_image_array, correlate, kernel_weights
from convtool.errors import ImageError, UsageError
from convtool.kernels.value import Kernel
from convtool.twins.borders import border_index

DEFAULT_MEMORY = 256 * 2**20
"""The band budget when none is given: 256 MiB of image data."""

FORTRAN_BUFFER = 2**18
"""Bytes of columns a Fortran-order ``.npy`` reader gathers before putting them in place."""

BIGTIFF_THRESHOLD = 2**32 - 2**25
"""Image data above this many bytes is written as BigTIFF (the classic format stops at 4 GiB)."""

Prepare = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------
# Readers: sources that give rows [start, stop)


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


class NpyReader:
    """Rows of a ``.npy`` file, read with ``readinto`` (no memory map, no whole-file read).

    An array stored in Fortran order (``numpy.save`` of a transposed or ``order="F"`` array)
    keeps each column, not each row, together on disk: a band is gathered from a run of every
    column (one read per column and channel; slower than C order, with the same bounded
    memory).
    """

    slack_rows = 0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{self.path}: not a readable .npy file ({exc})") from None
        if not isinstance(mapped, np.memmap):
            raise ImageError(f"{self.path}: not a .npy array file")
        shape, dtype, self.offset = mapped.shape, mapped.dtype, int(mapped.offset)
        self.fortran = bool(mapped.flags.f_contiguous and not mapped.flags.c_contiguous)
        del mapped  # nothing was read: the mapping only told the layout
        if len(shape) not in (2, 3) or dtype.hasobject or dtype.kind not in "biuf":
            raise ImageError(
                f"{self.path}: a {dtype} array of shape {shape} cannot be streamed; expected "
                "a 2-D or 3-D array of numbers"
            )
        self.shape = tuple(int(n) for n in shape)
        self.stored_dtype = dtype
        self.dtype = dtype.newbyteorder("=")
        self.row_bytes = int(np.prod(self.shape[1:])) * dtype.itemsize
        self.buffer_bytes = FORTRAN_BUFFER if self.fortran else 0
        """Memory the reader holds beside the rows it returns (see :func:`plan_band_rows`)."""

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        if self.fortran:
            return self._read_fortran(start, stop)
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.stored_dtype)
        with open(self.path, "rb") as fp:
            fp.seek(self.offset + start * self.row_bytes)
            got = fp.readinto(out.view(np.uint8).reshape(-1).data)
        if got != out.nbytes:
            raise ImageError(f"{self.path}: the file ends before row {stop} (truncated?)")
        return out if out.dtype.isnative else out.astype(self.dtype)

    def _read_fortran(self, start: int, stop: int) -> np.ndarray:
        """Rows of a Fortran-order file: a run of ``stop − start`` values from every column.

        Sample (h, w, c) sits at position h + H·(w + W·c) of the data; each column's run is
        read with one ``pread`` into a small buffer of a few columns, then put in place (a
        memory map would not do: the kernel maps whole blocks of every column around each
        touched page, so the resident set would grow to the file's size).
        """
        h, w = self.shape[:2]
        channels = self.shape[2] if len(self.shape) == 3 else 1
        rows = stop - start
        size = self.stored_dtype.itemsize
        out = np.empty((rows, w, channels), dtype=self.dtype)
        group = max(1, min(w, FORTRAN_BUFFER // max(1, rows * size)))
        buffer = np.empty((group, rows), dtype=self.stored_dtype)
        raw = buffer.view(np.uint8).reshape(-1).data
        run = rows * size
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for c in range(channels):
                for w0 in range(0, w, group):
                    w1 = min(w, w0 + group)
                    for col in range(w0, w1):
                        at = self.offset + ((c * w + col) * h + start) * size
                        piece = raw[(col - w0) * run : (col - w0 + 1) * run]
                        if os.preadv(fd, [piece], at) != run:
                            raise ImageError(
                                f"{self.path}: the file ends inside the data (truncated?)"
                            )
                    out[:, w0:w1, c] = buffer[: w1 - w0].T
        finally:
            os.close(fd)
        return out.reshape((rows, *self.shape[1:]))


class TiffReader:
    """Rows of the first image of a TIFF or BigTIFF file, decoded segment by segment.

    Strips and tiles (any compression tifffile decodes, chunky or planar) are read only where
    a band needs them; an uncompressed contiguous image is read with plain file reads. The
    last row of decoded segments is kept, so the halo rows shared by two neighbouring bands
    are decoded once. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import tifffile

        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
        except (tifffile.TiffFileError, ValueError) as exc:
            raise ImageError(f"{self.path}: not a readable TIFF file ({exc})") from None
        page = self._tif.pages.first
        planes, depth, height, width, contig = (int(n) for n in page.shaped)
        if depth != 1:
            self.close()
            raise ImageError(f"{self.path}: volumetric TIFF (depth {depth}) cannot be streamed")
        if page.dtype is None or np.dtype(page.dtype).kind not in "biuf":
            self.close()
            raise ImageError(f"{self.path}: TIFF samples of type {page.dtype} cannot be streamed")
        self.page = page
        self.planes, self.contig = planes, contig
        channels = planes * contig
        self.shape = (height, width) if channels == 1 else (height, width, channels)
        self.dtype = np.dtype(page.dtype).newbyteorder("=")
        self._file_dtype = np.dtype(self._tif.byteorder + np.dtype(page.dtype).char)
        if page.is_contiguous:
            self._offset = int(page.dataoffsets[0])
            self.slack_rows = 0
            self.segment_rows = 0
        else:
            self.segment_rows = int(page.tilelength if page.is_tiled else page.rowsperstrip)
            self.segment_rows = min(self.segment_rows, height)
            self.slack_rows = 2 * self.segment_rows
            self._across = math.ceil(width / page.tilewidth) if page.is_tiled else 1
            self._down = math.ceil(height / self.segment_rows)
        self._cache: tuple[int, np.ndarray] | None = None

    def __enter__(self) -> TiffReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._tif.close()

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        w = self.shape[1]
        out = np.empty((stop - start, w, self.planes, self.contig), dtype=self.dtype)
        if self.segment_rows == 0:
            self._read_contiguous(start, stop, out)
        else:
            first = start // self.segment_rows
            last = (stop - 1) // self.segment_rows
            for s in range(first, last + 1):
                block = self._segment_row(s)
                top = s * self.segment_rows
                lo, hi = max(start, top), min(stop, top + block.shape[0])
                out[lo - start : hi - start] = block[lo - top : hi - top]
        return out.reshape((stop - start, *self.shape[1:]))

    def _read_contiguous(self, start: int, stop: int, out: np.ndarray) -> None:
        h, w = self.shape[:2]
        row_bytes = w * self.contig * self._file_dtype.itemsize
        buf = np.empty((stop - start, w, self.contig), dtype=self._file_dtype)
        with open(self.path, "rb") as fp:
            for p in range(self.planes):
                fp.seek(self._offset + (p * h + start) * row_bytes)
                if fp.readinto(buf.view(np.uint8).reshape(-1).data) != buf.nbytes:
                    raise ImageError(
                        f"{self.path}: the file ends inside the image data (truncated?)"
                    )
                out[:, :, p, :] = buf

    def _segment_row(self, s: int) -> np.ndarray:
        """Decoded rows of the s-th row of strips or tiles: (rows, W, planes, contig)."""
        if self._cache is not None and self._cache[0] == s:
            return self._cache[1]
        page = self.page
        h, w = self.shape[:2]
        top = s * self.segment_rows
        rows = min(self.segment_rows, h - top)
        block = np.zeros((rows, w, self.planes, self.contig), dtype=self.dtype)
        per_plane = self._down * self._across
        indices = [
            p * per_plane + s * self._across + t
            for p in range(self.planes)
            for t in range(self._across)
        ]
        kwargs: dict[str, Any] = {}
        if page.compression in (6, 7, 34892, 33007):  # JPEG needs its tables
            kwargs = {"jpegtables": page.jpegtables, "jpegheader": page.keyframe.jpegheader}
        decode = page.decode
        segments = self._tif.filehandle.read_segments(
            [page.dataoffsets[i] for i in indices],
            [page.databytecounts[i] for i in indices],
            indices=indices,
            sort=True,
        )
        for data, index in segments:
            try:
                decoded, position, _ = decode(data, index, **kwargs)
            except Exception as exc:  # codec errors come in many types
                raise ImageError(f"{self.path}: cannot decode segment {index}: {exc}") from None
            if decoded is None:  # an empty segment reads as zeros
                continue
            plane, _, y, x, _ = position
            dims: tuple[int, ...] = np.shape(decoded)
            tile = np.reshape(decoded, (dims[-3], dims[-2], dims[-1]))
            th = min(dims[-3], rows - (y - top))
            tw = min(dims[-2], w - x)
            block[y - top : y - top + th, x : x + tw, plane, :] = tile[:th, :tw]
        self._cache = (s, block)
        return block


def open_reader(source: Any) -> Any:
    """A row reader for ``source``: a path to a ``.npy`` or TIFF file, a reader, or an array."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with open(path, "rb") as fp:
            magic = fp.read(6)
        if magic.startswith(b"\x93NUMPY"):
            return NpyReader(path)
        if magic[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return TiffReader(path)
        raise ImageError(
            f"{path}: only .npy and TIFF files can be read in bands; convert the image to "
            "TIFF (e.g. with tifffile or `convtool apply IN -k identity -o OUT.tif`)"
        )
    if hasattr(source, "read_rows"):
        return source
    if not hasattr(source, "shape"):
        source = np.asarray(source)
    return ArrayReader(source)


# --------------------------------------------------------------------------------------------
# Writers


class NpyWriter:
    """A ``.npy`` file (a path, or an open binary file) written band by band with file writes.

    No memory map, so the resident set does not grow with the file.

    ``write_rows(start, rows)`` may be called in any order; the file holds zeros where nothing
    was written.
    """

    def __init__(self, path: Any, shape: tuple[int, ...], dtype: Any) -> None:
        self.path = Path(path) if isinstance(path, (str, os.PathLike)) else None
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        header: dict[str, Any] = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        if self.path is None:  # an open binary file, left open
            self._fp, self._owned = path, False
        else:
            self._fp, self._owned = open(self.path, "wb"), True  # noqa: SIM115 (see close)
        np.lib.format.write_array_header_2_0(self._fp, header)
        self.offset = self._fp.tell()
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._fp.truncate(self.offset + self.shape[0] * self.row_bytes)

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or start + rows.shape[0] > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} at {start} do not fit {self.shape}")
        self._fp.seek(self.offset + start * self.row_bytes)
        self._fp.write(rows.view(np.uint8).reshape(-1).data)

    def close(self) -> None:
        if self._owned:
            self._fp.close()

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_tiff(
    path: Any,
    bands: Iterable[tuple[int, np.ndarray]],
    shape: tuple[int, ...],
    dtype: Any,
    *,
    compression: str | None = None,
    tile: int = 256,
    rows_per_strip: int = 64,
    bigtiff: bool | None = None,
    **tags: Any,
) -> None:
    """Write ``bands`` — (start row, rows) in order, covering ``shape`` — to a TIFF file.

    ``path``: a file name or an open binary file.
    Uncompressed images are written in strips of ``rows_per_strip`` rows, compressed ones
    (``compression`` as tifffile names it, e.g. ``"zlib"``) in ``tile`` × ``tile`` tiles that
    tifffile encodes; either way only one row of strips or tiles is held at a time. BigTIFF is
    chosen when the data passes :data:`BIGTIFF_THRESHOLD` (unless ``bigtiff`` says otherwise).
    ``tags`` go to ``tifffile.TiffWriter.write`` (``photometric``, ``resolution``,
    ``iccprofile``, ``extrasamples``, ``metadata``...).
    """
    import tifffile

    dtype = np.dtype(dtype)
    height, width = shape[:2]
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if bigtiff is None:
        bigtiff = nbytes > BIGTIFF_THRESHOLD
    step = tile if compression else rows_per_strip
    groups = _regroup(bands, step, height)
    data: Iterator[Any]
    if compression:
        tiles = [(x, min(x + tile, width)) for x in range(0, width, tile)]
        data = (rows[:, x0:x1] for rows in groups for x0, x1 in tiles)
        layout: dict[str, Any] = {"tile": (tile, tile), "compression": compression}
    else:
        data = (np.ascontiguousarray(rows, dtype=dtype).tobytes() for rows in groups)
        layout = {"rowsperstrip": rows_per_strip}
    tags.setdefault("metadata", None)
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        tw.write(data, shape=shape, dtype=dtype, **layout, **tags)


def _regroup(
    bands: Iterable[tuple[int, np.ndarray]], step: int, height: int
) -> Iterator[np.ndarray]:
    """Bands of any heights, in order, as consecutive groups of ``step`` rows (the last shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    expected = 0
    for start, rows in bands:
        if start != expected:
            raise ValueError(f"bands out of order: got row {start}, expected row {expected}")
        expected += rows.shape[0]
        pending.append(rows)
        have += rows.shape[0]
        while have >= step:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            yield joined[:step]
            rest = joined[step:]
            pending = [rest] if rest.shape[0] else []
            have = rest.shape[0]
    if have:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)
    if expected != height:
        raise ValueError(f"bands cover {expected} rows; the image has {height}")


# --------------------------------------------------------------------------------------------
# Stages: shift-invariant steps with a kh × kw footprint


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


# --------------------------------------------------------------------------------------------
# The band engine


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


@dataclass(frozen=True)
class _Geometry:
    """Heights and widths of the input and of every stage's output; the halos."""

    heights: tuple[int, ...]
    widths: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    border: str

    @classmethod
    def of(cls, shape: tuple[int, ...], stages: Sequence[Stage], border: str) -> _Geometry:
        heights, widths = [shape[0]], [shape[1]]
        for st in stages:
            check_fits(st.shape, (heights[-1], widths[-1]), border)
            h, w = output_shape((heights[-1], widths[-1]), st.shape, border)
            heights.append(h)
            widths.append(w)
        return cls(tuple(heights), tuple(widths), tuple(st.shape for st in stages), border)

    def before(self, s: int) -> int:
        """Rows of the extension above row 0 for stage ``s`` (0-based)."""
        return 0 if self.border == "valid" else self.shapes[s][0] // 2

    def left(self, s: int) -> int:
        return 0 if self.border == "valid" else self.shapes[s][1] // 2


def _needed_rows(geo: _Geometry, r0: int, r1: int) -> list[np.ndarray]:
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
    geo: _Geometry,
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
    if constant and not _holds(dtype, fill):
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


def _holds(dtype: np.dtype, fill: float | np.ndarray) -> bool:
    """Whether ``fill`` is stored in ``dtype`` exactly."""
    values = np.asarray(fill, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if values.min() < info.min or values.max() > info.max:
                return False
        return bool(np.all(values.astype(dtype).astype(np.float64) == values))


def _compute_band(
    reader: Any,
    stages: Sequence[Stage],
    geo: _Geometry,
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


def plan_band_rows(
    shape: tuple[int, ...],
    stages: Sequence[Stage],
    border: str,
    memory: int,
    *,
    channels: int | None = None,
    itemsize: int = 4,
    read_itemsize: int | None = None,
    slack_rows: int = 0,
    row_overhead: int = 0,
    fixed_overhead: int = 0,
) -> int:
    """The band height that keeps one band's image data within ``memory`` bytes.

    Counted per band, each with the halos of every later stage (twice over for ``wrap``, whose
    top band also reads the bottom rows): the source rows as read and prepared
    (``read_itemsize`` bytes per sample, default ``itemsize`` + 1; ``slack_rows`` more rows for
    a reader that decodes whole strips or tiles), each stage's extended band, its result and
    one temporary of that size (the separable pass), the previous band that the caller still
    holds while the next one is computed, all of ``channels`` samples of ``itemsize`` bytes,
    and ``row_overhead`` bytes per output row plus ``fixed_overhead`` bytes for the caller's
    own buffers (e.g. conversion to stored samples, a row of TIFF tiles). Raises UsageError
    when not even one row fits.
    """
    geo = _Geometry.of(shape, stages, border)
    c = channels if channels is not None else (shape[2] if len(shape) == 3 else 1)
    read_row = geo.widths[0] * c * (itemsize + 1 if read_itemsize is None else read_itemsize)
    halos = [0] * (len(stages) + 1)  # rows beyond the band at each stage's input
    for s in range(len(stages) - 1, -1, -1):
        halos[s] = halos[s + 1] + stages[s].shape[0] - 1
    if border == "wrap":
        halos = [2 * h for h in halos]
    per_row = read_row + row_overhead + geo.widths[-1] * c * itemsize  # the caller's last band
    fixed = (halos[0] + slack_rows) * read_row + fixed_overhead
    for s, st in enumerate(stages):
        band_row = (geo.widths[s] + st.shape[1] - 1) * c * itemsize
        out_row = 2 * geo.widths[s + 1] * c * itemsize
        per_row += band_row + out_row
        fixed += halos[s] * band_row + halos[s + 1] * out_row
    rows = (memory - fixed) // per_row
    if rows < 1:
        need = fixed + per_row
        raise UsageError(
            f"a memory budget of {format_bytes(memory)} is too small for a "
            f"{'x'.join(map(str, shape))} image with this kernel chain: one row of output with "
            f"its halo of {halos[0]} rows needs {format_bytes(need)}; allow at least that "
            f"(e.g. --memory {format_bytes(need, unit=True)})"
        )
    return int(min(rows, geo.heights[-1]))


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
    geo = _Geometry.of(tuple(reader.shape), stages, border)
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
    :class:`~convtool.kernels.Kernel`, spec string, nested list) or a list/tuple of arrays,
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


# --------------------------------------------------------------------------------------------
# Sizes


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``512M``, ``2G``, ``1.5GiB``, ``100000`` → bytes (binary units: K = 1024)."""
    s = str(text).strip().upper().replace(" ", "")
    for suffix in ("IB", "B"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1] in "KMGT":
            s = s[: -len(suffix)]
            break
    unit = s[-1:] if s[-1:] in "KMGT" else ""
    number = s[: len(s) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(
            f"memory size {text!r} is not understood; give a positive number of bytes with an "
            "optional unit K, M, G or T (binary: 512M = 512 MiB)"
        )
    return int(value * _UNITS[unit])


def format_bytes(n: float, *, unit: bool = False) -> str:
    """``268435456`` → ``256 MiB`` (``256M`` with ``unit=True``, as ``--memory`` reads it)."""
    for suffix in ("T", "G", "M", "K"):
        size = _UNITS[suffix]
        if n >= size:
            value = math.ceil(n / size * 10) / 10
            text = f"{value:g}"
            return f"{text}{suffix}" if unit else f"{text} {suffix}iB"
    return f"{int(n)}" if unit else f"{int(n)} B"


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fp:
            for line in fp:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
