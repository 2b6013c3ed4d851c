"""TIFF, through tifffile: reading a page as float planes, the write options, and the
banded reader and writer of the streamed path."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from convtool.choices import DEFAULT_COMPRESS_LEVEL
from convtool.errors import ImageError, quoted
from convtool.io.picture import Metadata, Picture, check_pixels, fitting_metadata, xmp_upright
from convtool.io.pixels import colors_of, split_alpha, unit, upright
from convtool.io.plan import OutputPlan

_XMP_TAG = 700
"""TIFF's XMP tag (the packet as bytes)."""


_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
"""ImageDescription, Make, Model, Software, DateTime, Artist, Copyright: the EXIF IFD0 tags a
TIFF carries as its own tags (kept in ``Metadata.exif`` when reading a TIFF)."""


def read_tiff(
    fp: BinaryIO, name: str, limit: int, index: int | None = None, samples: bool = False
) -> Picture:
    """Page ``index`` (0-based) of a TIFF; None: the first, with a note when there are more.
    ``samples``: 8- and 16-bit samples that mean sample / 255 or / 65535 as they stand are
    kept as they are (see :class:`Picture`), the others converted to floats."""
    import tifffile

    try:
        with tifffile.TiffFile(fp) as tif:
            page = tif.pages.first if index is None else tif.pages[index]
            check_pixels(int(page.imagewidth), int(page.imagelength), name, limit)
            stored = page.asarray()
            axes = str(page.axes)
            photometric = tiff_photometric(page)
            bits = _bits_per_sample(page)
            extrasamples = tuple(int(e) for e in page.extrasamples)
            colormap = page.colormap
            tags = {tag.code: tag.value for tag in page.tags.values()}
            pages = len(tif.pages)
            missing = missing_segments(page)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{name}: broken or unsupported TIFF file ({exc})") from None
    if axes == "SYX":
        stored = np.moveaxis(stored, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise ImageError(
            f"{name}: a TIFF with axes {axes!r}; convtool reads 2-D images with samples "
            "(one page, axes YX or YXS)"
        )
    kept = stored_planes(stored, photometric, extrasamples, bits) if samples else None
    if kept is None:
        kept = tiff_planes(stored, photometric, extrasamples, colormap, name, bits)
    data, alpha, depth = kept
    metadata, orientation = tiff_metadata(tags)
    data, alpha = upright(data, alpha, orientation)
    colors = colors_of(data)
    mode = {8: "", 16: ";16", 32: ";F"}[depth]
    return Picture(
        data=data,
        alpha=alpha,
        is_matrix=False,
        integer_stored=depth in (8, 16),
        depth=depth,
        format="TIFF",
        mode=colors + ("A" if alpha is not None else "") + mode,
        colors=colors,
        metadata=metadata,
        name=name,
        notes=(
            (f"{name}: a TIFF with {pages} pages; only the first page is filtered",)
            if pages > 1 and index is None
            else ()
        )
        + missing_note(name, *missing),
    )


def missing_segments(page: Any) -> tuple[int, int]:
    """How many of a TIFF page's strips or tiles are missing (offset or byte count 0: read as
    zeros), and how many it has."""
    pairs = list(zip(page.dataoffsets, page.databytecounts, strict=False))
    return sum(1 for offset, count in pairs if not offset or not count), len(pairs)


def missing_note(name: str, missing: int, total: int) -> tuple[str, ...]:
    """The note for a page with ``missing`` of its ``total`` strips or tiles absent."""
    if not missing:
        return ()
    return (f"{name}: {missing} of the TIFF's {total} strips or tiles are missing; read as zeros",)


_RGB, _YCBCR, _JPEG = 2, 6, 7
"""TIFF's photometric interpretations RGB and YCbCr, and its JPEG compression."""


def _bits_per_sample(page: Any) -> int | None:
    """A tifffile page's BitsPerSample (one number; None when the samples differ)."""
    bits = page.bitspersample
    if isinstance(bits, tuple):
        return int(bits[0]) if len(set(bits)) == 1 else None
    return int(bits)


def tiff_photometric(page: Any) -> int:
    """A tifffile page's photometric interpretation as its decoded samples have it, for
    :func:`tiff_planes`: JPEG-compressed YCbCr (JPEG-in-TIFF, as scanners and slide scanners
    write it) is RGB once the JPEG decoder has run."""
    photometric = int(page.photometric)
    if photometric == _YCBCR and int(page.compression) == _JPEG:
        return _RGB
    return photometric


_PHOTOMETRIC_NAMES = {
    0: "min-is-white",
    1: "min-is-black",
    2: "RGB",
    3: "palette",
    4: "transparency mask",
    5: "separated (CMYK)",
    6: "YCbCr",
    8: "CIE L*a*b*",
    9: "ICC L*a*b*",
    10: "ITU L*a*b*",
    32803: "colour filter array (raw)",
    32844: "LogL",
    32845: "LogLuv",
    34892: "linear raw",
}


def tiff_planes(
    stored: np.ndarray,
    photometric: int,
    extrasamples: tuple[int, ...],
    colormap: Any,
    name: str,
    bits: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """TIFF samples (H, W[, S]) as float planes: (data (H, W, C), alpha (H, W) or None, depth).

    ``bits`` is the page's BitsPerSample: integer samples of 2 to 7 or 9 to 15 bits (4-bit
    grey, 12-bit scans) are value / (2^bits − 1), as 8 and 16 bits are / 255 and / 65535
    (without it, the container's: a 12-bit image would read as 1/16 of its brightness).
    Pixel by pixel, so it serves any band of rows as well as the whole image (the streamed
    path reads TIFF in bands with :class:`TiffReader`).
    """
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    data, depth = _tiff_samples(stored, name, bits)
    nextra = len(extrasamples)
    ncolour = data.shape[2] - nextra
    has_alpha = bool(nextra) and extrasamples[0] in (1, 2)  # associated / unassociated alpha
    data, alpha = split_alpha(data[..., : ncolour + has_alpha], "A" if has_alpha else "")
    # photometric: 0 min-is-white, 1 min-is-black, 2 RGB, 3 palette, 5 separated (CMYK)
    if photometric == 0 and ncolour == 1:
        data = 1.0 - data  # in the [0, 1] scale: 0 is white
    elif photometric == 3 and ncolour == 1 and colormap is not None:
        index = np.asarray(stored[..., 0], dtype=np.intp)
        depth = 8 if stored.dtype == np.uint8 else 16
        colours = _tiff_palette(np.asarray(colormap), depth)
        data = np.moveaxis(colours[:, index], 0, -1)
    elif (photometric, ncolour) not in ((0, 1), (1, 1), (2, 3), (5, 4)):
        raise ImageError(
            f"{name}: a TIFF with photometric interpretation {photometric} "
            f"({_PHOTOMETRIC_NAMES.get(photometric, 'unknown')}) and {ncolour} colour "
            "samples; convtool reads grey, RGB, palette and CMYK TIFF (and JPEG-compressed "
            "YCbCr): convert it to RGB first (e.g. convert in.tif -colorspace sRGB out.tif)"
        )
    if alpha is not None and extrasamples[0] == 1:
        # associated (premultiplied) alpha: store straight colour, as every other format does
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.where(alpha[..., np.newaxis] > 0, data / alpha[..., np.newaxis], 0.0)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    return data, alpha, depth


def stored_planes(
    stored: np.ndarray, photometric: int, extrasamples: tuple[int, ...], bits: int | None
) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """TIFF samples (H, W[, S]) as the uint8/uint16 (data, alpha, depth) of a picture of
    samples, where :func:`tiff_planes` would only divide them by 255 or 65535: grey
    (min-is-black), RGB or CMYK at the container's full depth, alpha absent or unassociated.
    None for the others (min-is-white, palettes, 12-bit samples, premultiplied alpha...)."""
    if stored.dtype not in (np.uint8, np.uint16):
        return None
    container = 8 * stored.dtype.itemsize
    if bits is not None and bits != container:
        return None
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    ncolour = stored.shape[2] - len(extrasamples)
    if (photometric, ncolour) not in ((1, 1), (2, 3), (5, 4)):
        return None
    has_alpha = bool(extrasamples) and extrasamples[0] in (1, 2)
    if has_alpha and extrasamples[0] == 1:
        return None  # associated alpha: the colour is divided by it
    data, alpha = split_alpha(stored[..., : ncolour + has_alpha], "A" if has_alpha else "")
    return data, alpha, container


def _tiff_palette(colormap: np.ndarray, depth: int) -> np.ndarray:
    """A TIFF colormap (3, N) of 16-bit entries as float32 colours in [0, 1].

    An 8-bit palette image holds 8-bit colours: each entry's high byte, as libtiff reads them
    (writers scale a level v by 257 — ImageMagick, libtiff — or by 256 — Pillow, so v/255 is
    entry >> 8 for both, where entry/65535 gives Pillow's white as 254); old writers that
    stored 8-bit entries (every one below 256) are read as they are, as libtiff does.
    """
    entries = colormap.astype(np.uint32)
    if depth == 8:
        levels = entries if int(entries.max(initial=0)) < 256 else entries >> 8
        return levels.astype(np.float32) / np.float32(255)
    return entries.astype(np.float32) / np.float32(65535)


def _tiff_samples(stored: np.ndarray, name: str, bits: int | None = None) -> tuple[np.ndarray, int]:
    """TIFF samples as float32 in [0, 1] (integers: / (2^bits − 1), bits the page's or the
    container's) or as they are (floats), and the depth."""
    if stored.dtype == np.bool_:
        return stored.astype(np.float32), 8
    if stored.dtype in (np.uint8, np.uint16):
        container = 8 * stored.dtype.itemsize
        used = bits if bits is not None and 1 < bits < container else container
        return unit(stored, (1 << used) - 1), container
    if stored.dtype.kind == "f":
        return stored.astype(np.float32), 32
    raise ImageError(
        f"{name}: a TIFF with {stored.dtype} samples; convtool reads 1-, 8- and 16-bit unsigned "
        "and floating-point TIFF"
    )


def tiff_metadata(tags: dict[int, Any]) -> tuple[Metadata, int]:
    from PIL import Image

    icc = tags.get(34675)
    icc = bytes(icc) if icc is not None else None
    dpi = None
    if 282 in tags and 283 in tags:
        unit = int(tags.get(296, 2))
        per_inch = {2: 1.0, 3: 2.54}.get(unit)
        if per_inch is not None:
            x, y = (_rational(tags[282]), _rational(tags[283]))
            if x > 0 and y > 0:
                dpi = (x * per_inch, y * per_inch)
    exif = Image.Exif()
    for code in _TIFF_DESCRIPTIVE_TAGS:
        value = tags.get(code)
        if isinstance(value, str) and value and not (code == 305 and value == "tifffile.py"):
            if code == 270 and value.startswith("{"):
                continue  # tifffile's own JSON shape description
            exif[code] = value
    orientation = int(tags.get(274, 1) or 1)
    xmp = tags.get(_XMP_TAG)
    exif_bytes = exif.tobytes() if len(exif) else None
    compression = int(tags.get(259, 1) or 1)
    metadata = Metadata(icc, dpi, exif_bytes, xmp_upright(xmp), tiff_compression=compression)
    return metadata, orientation


def _rational(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]) / float(value[1]) if value[1] else 0.0
    return float(value)


_KEPT_COMPRESSIONS = {1: None, 5: "lzw", 8: "zlib", 32946: "zlib", 32773: "packbits"}
"""A TIFF input's Compression tag → the compression its TIFF output keeps (tifffile's names;
None: uncompressed). Others (JPEG, zstd...) are written deflate-compressed: lossless, and
read by every TIFF reader."""


def encode_tiff(
    stored: np.ndarray,
    plan: OutputPlan,
    metadata: Metadata,
    compress_level: int | None,
    threads: int | None = None,
) -> bytes:
    """The TIFF bytes of ``stored``; compressed strips are encoded on ``threads`` threads
    (default: every core). The bytes do not depend on ``threads``."""
    import tifffile

    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[..., 0]
    options = tiff_options(plan, metadata, compress_level)
    if "compression" in options:
        options["maxworkers"] = threads or os.cpu_count() or 1
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(stored), **options)
    return buffer.getvalue()


def tiff_compression(metadata: Metadata, compress_level: int | None) -> dict[str, Any]:
    """The compression options of a TIFF output: ``compress_level`` 0 none, 1–9 deflate at
    that level; None keeps a TIFF input's compression (:data:`_KEPT_COMPRESSIONS`), or
    deflate at :data:`DEFAULT_COMPRESS_LEVEL` for other inputs."""
    if compress_level is None:
        kept = _KEPT_COMPRESSIONS.get(metadata.tiff_compression or 0, "zlib")
        if kept is None:
            return {}
        if kept != "zlib":
            return {"compression": kept}
        compress_level = DEFAULT_COMPRESS_LEVEL
    if compress_level == 0:
        return {}
    return {"compression": "zlib", "compressionargs": {"level": compress_level}}


def tiff_options(
    plan: OutputPlan, metadata: Metadata, compress_level: int | None
) -> dict[str, Any]:
    """``tifffile`` write options for ``plan``: photometric, alpha, metadata tags, compression
    (:func:`tiff_compression`).

    Shared by the in-memory writer and the streamed one (:func:`convtool.stream.write_tiff`).
    """
    from PIL import Image

    metadata = fitting_metadata(metadata, plan.colors)
    photometric = {"L": "minisblack", "RGB": "rgb", "CMYK": "separated"}[plan.colors]
    options: dict[str, Any] = {"photometric": photometric, "metadata": None}
    if plan.alpha:
        options["extrasamples"] = ["unassalpha"]
    if metadata.icc_profile:
        options["iccprofile"] = metadata.icc_profile
    if metadata.dpi:
        options["resolution"] = metadata.dpi
        options["resolutionunit"] = "INCH"
    extratags: list[tuple[int, str, int, str | bytes, bool]] = []
    if metadata.exif:
        exif = Image.Exif()
        exif.load(metadata.exif)
        for code in _TIFF_DESCRIPTIVE_TAGS:
            value = exif.get(code)
            if isinstance(value, str) and value:
                if code == 270:
                    options["description"] = value
                elif code == 305:
                    options["software"] = value
                else:
                    extratags.append((code, "s", 0, value, True))
    if metadata.xmp:
        extratags.append((_XMP_TAG, "B", len(metadata.xmp), metadata.xmp, True))
    options.setdefault("software", "convtool")
    options.update(tiff_compression(metadata, compress_level))
    options["extratags"] = extratags
    return options


BIGTIFF_THRESHOLD = 2**32 - 2**25
"""Image data above this many bytes is written as BigTIFF (the classic format stops at 4 GiB)."""


class TiffReader:
    """Rows of one page of a TIFF or BigTIFF file, decoded segment by segment.

    Strips and tiles (any compression tifffile decodes, chunky or planar) are read only where
    a band needs them; an uncompressed contiguous image is read with plain file reads. The
    last row of decoded segments is kept, so the halo rows shared by two neighbouring bands
    are decoded once. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], index: int = 0) -> None:
        """``index``: the page (0-based) to read."""
        import tifffile

        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
        except (tifffile.TiffFileError, ValueError) as exc:
            raise ImageError(f"{quoted(self.path)}: not a readable TIFF file ({exc})") from None
        page: Any = self._tif.pages.first if index == 0 else self._tif.pages[index]
        planes, depth, height, width, contig = (int(n) for n in page.shaped)
        if depth != 1:
            self.close()
            raise ImageError(
                f"{quoted(self.path)}: volumetric TIFF (depth {depth}) cannot be streamed"
            )
        if page.dtype is None or np.dtype(page.dtype).kind not in "biuf":
            self.close()
            raise ImageError(
                f"{quoted(self.path)}: TIFF samples of type {page.dtype} cannot be streamed"
            )
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
                        f"{quoted(self.path)}: the file ends inside the image data (truncated?)"
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
                raise ImageError(
                    f"{quoted(self.path)}: cannot decode segment {index}: {exc}"
                ) from None
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

    ``path``: a file name, an open binary file, or an open ``tifffile.TiffWriter`` (a page of
    several).
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
    if isinstance(path, tifffile.TiffWriter):  # one page of several (its bigtiff chosen)
        path.write(data, shape=shape, dtype=dtype, **layout, **tags)
        return
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
