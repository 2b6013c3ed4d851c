"""Images and matrix files in and out: the one place of convtool's pixel policy.

Reading turns every source into float planes:

* an **image** (anything Pillow reads, TIFF through tifffile, 16-bit colour PNG through
  imagecodecs) becomes ``data`` float32 (H, W, C) in [0, 1] — 8-bit values / 255, 16-bit
  values / 65535, float images as they are — with C = 1 (grey, also for 1-bit and grey
  palettes), 3 (RGB) or 4 (CMYK); gray images are (H, W, 1), never (H, W). The alpha channel
  is split off into ``alpha`` (float32 (H, W) in [0, 1]). The EXIF orientation is applied, so
  the planes are the picture as it is seen on screen.
* a **matrix** (``.npy``, ``.txt``, ``.csv``) becomes ``data`` float64 (H, W) — or (H, W, C)
  for a 3-D ``.npy`` — holding the raw numbers, never scaled or clipped.

Writing converts back in one place (:func:`encode`): ``--map`` (clip, abs, rescale, none;
by default none for float outputs, which hold every value, and clip for 8- and 16-bit ones),
then round to nearest, then clamp to the stored range (:func:`clipped_samples` counts what
the clamp loses). Across kinds the [0, 1] scale is the
bridge: an image written to ``.npy``/``.txt`` holds its [0, 1] values, a matrix written as an
image maps [0, 1] to 0..max.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from convtool.choices import (
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUALITY,
    OUTPUT_MAPS,
)
from convtool.errors import ImageError, UsageError
from convtool.io import png as pngwrite
from convtool.io.matrix import read_npy_header

MATRIX_FORMATS = {".npy": "NPY", ".txt": "TXT", ".csv": "CSV"}
"""File suffixes read and written as matrices (raw numbers), with their format names."""

LUMA_601 = (0.299, 0.587, 0.114)
"""ITU-R 601-2 luma weights for R, G, B — the ones Pillow's ``convert("L")`` uses."""

ORIENTATION_TAG = 0x0112
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class JpegCompression:
    """How a JPEG input was compressed, for a JPEG output written without ``--quality``.

    ``qtables``: its quantization tables as Pillow reads them (``im.quantization``, in table
    order); ``subsampling``: Pillow's ``JpegImagePlugin.get_sampling``: 0 4:4:4, 1 4:2:2,
    2 4:2:0, -1 none (grey, CMYK) or another.
    """

    qtables: tuple[tuple[int, ...], ...]
    subsampling: int


@dataclass(frozen=True)
class Metadata:
    """What convtool carries from input to output besides the pixels.

    ``exif`` is the EXIF block as Pillow writes it, with the orientation already applied to the
    pixels and therefore reset (the tag removed); ``dpi`` is (x, y) dots per inch; ``xmp`` the
    XMP packet (ratings, keywords, captions...), its ``tiff:Orientation`` removed likewise;
    ``jpeg`` a JPEG input's compression (see :class:`JpegCompression`).
    """

    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    jpeg: JpegCompression | None = None

    @property
    def icc_color_space(self) -> str | None:
        """The ICC profile's colour space signature (``'RGB'``, ``'GRAY'``, ``'CMYK'``...)."""
        if not self.icc_profile or len(self.icc_profile) < 20:
            return None
        return self.icc_profile[16:20].decode("latin-1").strip()


@dataclass(frozen=True, eq=False)
class Picture:
    """An image or a matrix as float planes, with what writing it back needs.

    ``data``: images float32 (H, W, C) in [0, 1] (C = 1 grey, 3 RGB, 4 CMYK; alpha not
    included); matrices float64 (H, W), or (H, W, C) from a 3-D ``.npy``, raw numbers.
    ``alpha``: float32 (H, W) in [0, 1] or None (always None for matrices). An image's
    ``data`` and ``alpha`` may instead be uint8 or uint16 *samples*, each standing for the value
    sample / 255 or / 65535 (:func:`read_picture` with ``samples=True``, the fused output of
    :func:`convtool.filtering.filter_picture`); :func:`to_unit` turns them into floats.
    ``integer_stored``: True for 8- and 16-bit images; their stored values 0 and 1.0 are the
    clipping extremes. ``depth``: bits per stored sample: 8, 16, 32 (float32) or 64 (float64
    matrices). ``format``: Pillow's format name (``PNG``, ``JPEG``, ``TIFF``...) or ``NPY``,
    ``TXT``, ``CSV``. ``mode``: the source's Pillow mode (``L``, ``RGBA``, ``I;16``...; for
    TIFF read by tifffile the equivalent; ``matrix`` for matrices). ``colors``: what the
    channels of ``data`` are: ``L``, ``RGB``, ``CMYK``, or ``matrix``. ``notes``: what reading
    decided for the user (only the first frame of an animation, 1-bit read as 8-bit grey), one
    sentence each naming the source, for the command to print.
    """

    data: np.ndarray
    alpha: np.ndarray | None = None
    is_matrix: bool = False
    integer_stored: bool = False
    depth: int = 8
    format: str = "PNG"
    mode: str = "L"
    colors: str = "L"
    metadata: Metadata = field(default_factory=Metadata)
    name: str = ""
    notes: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels in ``data`` (alpha not counted); 1 for a 2-D matrix."""
        return int(self.data.shape[2]) if self.data.ndim == 3 else 1

    def with_planes(self, data: np.ndarray, alpha: np.ndarray | None) -> Picture:
        """The same picture (format, depth, metadata) with new planes, e.g. filtered ones."""
        return replace(self, data=data, alpha=alpha)


# --------------------------------------------------------------------------------------------
# Reading


def read_picture(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = None,
    samples: bool = False,
) -> Picture:
    """Read an image or a matrix file (``"-"``: standard input, sniffed) as a :class:`Picture`.

    ``gray`` converts colour images to one ITU-R 601-2 luminance channel (Pillow's ``L``
    weights, computed in floating point) and drops a colour ICC profile. Images with more than
    ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`) are refused before decoding.
    ``samples`` keeps the uint8/uint16 samples of 8- and 16-bit images read by Pillow or
    imagecodecs instead of floats (see :class:`Picture`; without ``gray``).
    Raises :class:`~convtool.errors.ImageError` saying what came in and what to do.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if str(source) == "-":
        raw = sys.stdin.buffer.read()
        with _decoding("standard input"):
            picture = _read_bytes(raw, "standard input", limit, samples)
    else:
        path = Path(source)
        name = str(source)
        try:
            info = path.stat()
            if stat.S_ISREG(info.st_mode) and info.st_size == 0:
                raise ImageError(
                    f"{name}: is empty (0 bytes); give an image or a matrix file (it may not "
                    "have been written completely)"
                )
            with _decoding(name):
                if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
                    # a pipe (``<(...)``, /dev/stdin, a FIFO) can be read once, and not seeked
                    # in: its bytes, sniffed as standard input's are
                    with open(path, "rb") as fp:
                        raw = fp.read()
                    picture = _read_bytes(raw, name, limit, samples)
                elif path.suffix.lower() in MATRIX_FORMATS:
                    picture = _read_matrix_file(path, name, limit)
                else:
                    with open(path, "rb") as fp:
                        picture = _read_image(fp, name, limit, samples)
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a directory; give an image or matrix file") from None
        except PermissionError:
            raise ImageError(f"{name}: permission denied; check the file's permissions") from None
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    return to_gray(to_unit(picture)) if gray else picture


def to_unit(picture: Picture) -> Picture:
    """The picture with float planes: uint8/uint16 samples as float32 / 255 or / 65535 (the
    conversion of reading); a picture with float planes as it is."""
    if picture.data.dtype.kind != "u":
        return picture
    alpha = picture.alpha
    if alpha is not None:
        alpha = _unit_alpha(alpha, int(np.iinfo(alpha.dtype).max))
    return replace(
        picture, data=_unit(picture.data, int(np.iinfo(picture.data.dtype).max)), alpha=alpha
    )


@contextlib.contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Decoding untrusted bytes: whatever a decoder raises becomes one :class:`ImageError`.

    Pillow, tifffile and numpy raise many kinds of exception on damaged files (IndexError,
    TypeError, struct.error, tokenize.TokenError...). OSError is left to the caller, which
    knows the file (no such file, permission denied...).
    """
    try:
        yield
    except (ImageError, OSError):
        raise
    except MemoryError:
        raise ImageError(
            f"{name}: not enough memory to read it; free memory, or refuse images this large "
            "before decoding with a lower --max-pixels"
        ) from None
    except Exception as exc:
        raise ImageError(
            f"{name}: cannot be read; the file is damaged or of a kind convtool does not know "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _read_bytes(raw: bytes, name: str, limit: int, samples: bool = False) -> Picture:
    """Sniff bytes from standard input: an image Pillow (or tifffile) reads, a .npy, or text."""
    if not raw:
        raise ImageError(f"{name}: is empty; pipe an image or a text matrix into it")
    if raw.startswith(_NPY_MAGIC):
        return _matrix_picture(_load_npy(io.BytesIO(raw), name, limit), "NPY", name)
    try:
        return _read_image(io.BytesIO(raw), name, limit, samples)
    except _NotAnImage as not_image:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImageError(
                f"{name}: neither an image Pillow reads nor a text matrix ({not_image})"
            ) from None
        return _matrix_picture(parse_matrix(text, name, limit), "TXT", name)


class _NotAnImage(ImageError):
    """Pillow could not identify the bytes as an image."""


# Images ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _pillow_without_bomb_check() -> Iterator[None]:
    """convtool checks the pixel count itself (``max_pixels``); silence Pillow's own check."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _check_pixels(width: int, height: int, name: str, limit: int) -> None:
    if width * height > limit:
        raise ImageError(
            f"{name}: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{limit:,} (a guard against decompression bombs); if you trust the file, raise it "
            f"with --max-pixels {width * height}"
        )


def _read_image(fp: BinaryIO, name: str, limit: int, samples: bool = False) -> Picture:
    head = fp.read(12)
    fp.seek(0)
    if head.startswith(_TIFF_MAGICS):
        return _read_tiff(fp, name, limit)
    from PIL import Image, UnidentifiedImageError

    with _pillow_without_bomb_check():
        try:
            im = Image.open(fp)
        except UnidentifiedImageError:
            kind = _signature(head)
            if kind is not None:
                raise ImageError(
                    f"{name}: starts as a {kind} file, but Pillow cannot open it: the file is "
                    "truncated or damaged"
                ) from None
            raise _NotAnImage(
                f"{name}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, "
                "PPM/PGM...) nor a matrix file (.npy, .txt, .csv)"
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            kind = _signature(head)
            if kind is not None:
                raise ImageError(f"{name}: broken or truncated {kind} file ({exc})") from None
            raise ImageError(f"{name}: cannot be read as an image ({exc})") from None
        with im:
            _check_pixels(im.width, im.height, name, limit)
            rawmode = _pillow_rawmode(im)  # before getexif(), which may decode a PNG
            try:
                # The pixels before the metadata: getexif() decodes a PNG, and it may not fail
                # quietly (a damaged file would then be filtered into garbage).
                data, alpha, colors, depth, mode = _pillow_planes(im, fp, name, rawmode)
            except ImageError:
                raise
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise ImageError(f"{name}: broken or truncated {im.format} file ({exc})") from None
            metadata, orientation = _pillow_metadata(im)
            fmt = {"MPO": "JPEG", None: "PNG"}.get(im.format, str(im.format))  # MPO: camera JPEG
            notes = _reading_notes(im, name)
    data, alpha = _upright(data, alpha, orientation)
    picture = Picture(
        data=data,
        alpha=alpha,
        is_matrix=False,
        integer_stored=depth in (8, 16),
        depth=depth,
        format=fmt,
        mode=mode,
        colors=colors,
        metadata=metadata,
        name=name,
        notes=notes,
    )
    return picture if samples else to_unit(picture)


_SIGNATURES = (
    (_PNG_MAGIC, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


def _signature(head: bytes) -> str | None:
    """The format whose magic bytes ``head`` starts with (PNG, JPEG, GIF, BMP, WebP), if any."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM") and head[6:10] == bytes(4):  # the reserved words are 0
        return "BMP"
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)


def _reading_notes(im: Any, name: str) -> tuple[str, ...]:
    """What reading decided for the user: the first frame of several; 1-bit as 8-bit grey."""
    notes = []
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception:  # counting frames reads on through the file; damage there is not ours
        frames = 1
    if frames > 1:
        kind = "an animated GIF" if im.format == "GIF" else f"a {im.format} file"
        notes.append(f"{name}: {kind} with {frames} frames; only the first frame is filtered")
    if im.mode == "1":
        notes.append(f"{name}: a 1-bit image, filtered as 8-bit grey (0 and 255) and written so")
    return tuple(notes)


def _pillow_metadata(im: Any) -> tuple[Metadata, int]:
    """ICC profile, DPI, EXIF (orientation removed) and the orientation, from a Pillow image."""
    orientation = 1
    exif_bytes = None
    try:
        exif = im.getexif()
    except Exception:  # a broken EXIF block must not make the picture unreadable
        exif = None
    if exif:
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        if ORIENTATION_TAG in exif:
            del exif[ORIENTATION_TAG]
        exif_bytes = exif.tobytes() if len(exif) else None
    dpi = im.info.get("dpi")
    if dpi is not None:
        try:
            dpi = (float(dpi[0]), float(dpi[1]))
        except (TypeError, ValueError, IndexError):
            dpi = None
        if dpi is not None and not (dpi[0] > 0 and dpi[1] > 0):
            dpi = None
    icc = im.info.get("icc_profile") or None
    xmp = im.info.get("xmp") or None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return Metadata(icc, dpi, exif_bytes, _xmp_upright(xmp), _jpeg_compression(im)), orientation


def _jpeg_compression(im: Any) -> JpegCompression | None:
    """A JPEG's quantization tables and chroma subsampling; None for other formats."""
    from PIL import JpegImagePlugin

    tables = getattr(im, "quantization", None)
    if not isinstance(im, JpegImagePlugin.JpegImageFile) or not tables:
        return None
    qtables = tuple(tuple(int(v) for v in tables[key]) for key in sorted(tables))
    return JpegCompression(qtables, int(JpegImagePlugin.get_sampling(im)))


_XMP_ORIENTATION = re.compile(
    rb'\s*tiff:Orientation\s*=\s*["\'][0-9]*["\']|<tiff:Orientation>[^<]*</tiff:Orientation>'
)


def _xmp_upright(xmp: bytes | None) -> bytes | None:
    """The XMP packet without its orientation (the pixels are written upright), as Pillow's
    ``exif_transpose`` removes it; None for none or a packet that is not bytes."""
    if not isinstance(xmp, bytes | bytearray) or not xmp:
        return None
    return _XMP_ORIENTATION.sub(b"", bytes(xmp))


def _pillow_planes(
    im: Any, fp: BinaryIO, name: str, rawmode: str
) -> tuple[np.ndarray, np.ndarray | None, str, int, str]:
    """Decode a Pillow image into (data, alpha, colors, depth, mode): the mode table. 8- and
    16-bit data and alpha come as their uint8/uint16 samples (:func:`to_unit` converts them)."""
    mode = str(im.mode)
    if im.format == "PNG" and mode in ("RGB", "RGBA") and ";16" in rawmode:
        # Pillow reads 16-bit colour (and 16-bit grey + alpha) PNG as 8-bit: use imagecodecs.
        return _read_png16(fp, name, rawmode)
    if im.format == "PPM" and mode == "RGB" and _ppm_maxval(rawmode) > 255:
        # Pillow reads 16-bit colour PPM as 8-bit: read the samples here.
        return _read_ppm16(fp, im, name, _ppm_maxval(rawmode)), None, "RGB", 16, "RGB;16"
    if mode in ("1", "L", "La", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "YCbCr", "HSV"):
        if mode == "1":
            im = im.convert("L")
        elif mode == "La":
            im = im.convert("LA")
        elif mode in ("P", "PA"):
            im = im.convert("RGBA" if mode == "PA" or im.has_transparency_data else "RGB")
        elif mode == "RGBa":
            im = im.convert("RGBA")
        elif mode in ("RGBX", "YCbCr", "HSV"):
            im = im.convert("RGB")
        elif mode in ("L", "RGB") and im.has_transparency_data:
            im = im.convert(mode + "A")  # a tRNS colour key becomes a real alpha channel
        stored = np.asarray(im)
        data, alpha = _split_alpha(stored, str(im.mode))
        if mode in ("P", "PA") and _all_grey(data):
            data = np.ascontiguousarray(data[..., :1])  # a grey palette: one channel, as L
        return data, alpha, _colors(data), 8, mode
    if mode == "CMYK":
        return np.asarray(im), None, "CMYK", 8, mode
    if mode.startswith("I;16"):
        stored = np.asarray(im).astype(np.uint16)
        key = im.info.get("transparency")  # a 16-bit grey PNG's tRNS colour key
        alpha = None
        if isinstance(key, int) and not isinstance(key, bool):
            alpha = np.where(stored == key, 0, 65535).astype(np.uint16)
        return stored[..., np.newaxis], alpha, "L", 16, mode
    if mode == "I":
        # Pillow opens 16-bit grey PNG/PGM (and some TIFF) as 32-bit "I": 16-bit values.
        stored = np.asarray(im).astype(np.float64)
        return _unit(stored[..., np.newaxis], 65535), None, "L", 16, mode
    if mode == "F":
        return np.asarray(im, dtype=np.float32)[..., np.newaxis].copy(), None, "L", 32, mode
    raise ImageError(
        f"{name}: Pillow mode {mode!r} is not supported; convert the image to RGB, grey or "
        "CMYK first"
    )


def _all_grey(rgb: np.ndarray) -> bool:
    """Whether every pixel of (H, W, 3) samples has R = G = B."""
    red = rgb[..., 0]
    return bool(np.array_equal(red, rgb[..., 1]) and np.array_equal(red, rgb[..., 2]))


def _pillow_rawmode(im: Any) -> str:
    """How the file stores the samples, e.g. ``RGB;16B`` (16-bit PNG) or ``RGB;65535`` (PPM)."""
    try:
        args = im.tile[0][3]
    except (IndexError, TypeError, AttributeError):
        return ""
    if isinstance(args, tuple):
        # PPM: (rawmode, maxval); other formats: (rawmode, ...)
        if im.format == "PPM" and len(args) > 1 and isinstance(args[1], int):
            return f"{args[0]};{args[1]}"
        args = args[0] if args else ""
    return str(args)


def _read_ppm16(fp: BinaryIO, im: Any, name: str, maxval: int) -> np.ndarray:
    """The samples of a 16-bit colour PPM (P6, or plain P3) at full depth: uint16 for a maxval
    of 65535, else float32 value / maxval (10-, 12-bit... files, exactly)."""
    tile = im.tile[0]
    count = im.width * im.height * 3
    fp.seek(tile.offset)
    if tile.codec_name == "ppm_plain":
        words = b" ".join(line.split(b"#", 1)[0] for line in fp.read().splitlines()).split()
        if len(words) < count:
            raise ImageError(f"{name}: truncated PPM file ({len(words)} of {count} samples)")
        samples = np.array(words[:count], dtype=np.int64)
    else:
        raw = fp.read(count * 2)
        if len(raw) < count * 2:
            raise ImageError(
                f"{name}: truncated PPM file ({len(raw):,} of {count * 2:,} bytes of samples)"
            )
        samples = np.frombuffer(raw, dtype=">u2").astype(np.int64)
    if samples.size and (int(samples.max()) > maxval or int(samples.min()) < 0):
        raise ImageError(f"{name}: broken PPM file (a sample above its maxval {maxval})")
    samples = samples.reshape(im.height, im.width, 3)
    if maxval == 65535:
        return samples.astype(np.uint16)
    return samples.astype(np.float32) / np.float32(maxval)


def _ppm_maxval(rawmode: str) -> int:
    tail = rawmode.rpartition(";")[2]
    return int(tail) if tail.isdigit() else 255


def _read_png16(
    fp: BinaryIO, name: str, rawmode: str
) -> tuple[np.ndarray, np.ndarray | None, str, int, str]:
    """A 16-bit colour or grey + alpha PNG at full depth, through imagecodecs (a dependency:
    Pillow would cut it to 8 bits)."""
    import imagecodecs

    fp.seek(0)
    try:
        stored = imagecodecs.png_decode(fp.read())
    except Exception as exc:
        raise ImageError(f"{name}: broken PNG file ({exc})") from None
    mode = {"LA;16B": "LA", "RGB;16B": "RGB", "RGBA;16B": "RGBA"}.get(rawmode, "RGB") + ";16"
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[stored.shape[2]]
    data, alpha = _split_alpha(stored, layout)
    depth = 16 if stored.dtype == np.uint16 else 8
    return data, alpha, _colors(data), depth, mode


def _split_alpha(stored: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour planes (H, W, C) and alpha (H, W) from stored samples laid out as ``layout``.

    The one place where alpha is split from colour (:func:`_merge_alpha` merges it back).
    """
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    if layout.endswith("A"):
        return stored[..., :-1], stored[..., -1]
    return stored, None


def _merge_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Stored colour samples (H, W, C) and alpha (H, W) as one (H, W, C [+ 1]) array."""
    if alpha is None:
        return colour
    return np.concatenate([colour, alpha[..., np.newaxis]], axis=2)


def _unit(stored: np.ndarray, maxval: int) -> np.ndarray:
    """Stored integer samples as float32 in [0, 1] (the pixel policy: / 255 or / 65535)."""
    out = np.array(stored, dtype=np.float32, order="C")
    np.divide(out, np.float32(maxval), out=out)
    return out if out.ndim == 3 else out[..., np.newaxis]


def _unit_alpha(stored: np.ndarray | None, maxval: int) -> np.ndarray | None:
    if stored is None:
        return None
    return np.ascontiguousarray(np.asarray(stored, dtype=np.float32) / np.float32(maxval))


def _colors(data: np.ndarray) -> str:
    return {1: "L", 3: "RGB", 4: "CMYK"}[data.shape[2]]


def _upright(
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


# TIFF -----------------------------------------------------------------------------------------

_XMP_TAG = 700
"""TIFF's XMP tag (the packet as bytes)."""

_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 305, 306, 315, 33432)
"""ImageDescription, Make, Model, Software, DateTime, Artist, Copyright: the EXIF IFD0 tags a
TIFF carries as its own tags (kept in ``Metadata.exif`` when reading a TIFF)."""


def _read_tiff(fp: BinaryIO, name: str, limit: int) -> Picture:
    import tifffile

    try:
        with tifffile.TiffFile(fp) as tif:
            page = tif.pages.first
            _check_pixels(int(page.imagewidth), int(page.imagelength), name, limit)
            stored = page.asarray()
            axes = str(page.axes)
            photometric = tiff_photometric(page)
            bits = _bits_per_sample(page)
            extrasamples = tuple(int(e) for e in page.extrasamples)
            colormap = page.colormap
            tags = {tag.code: tag.value for tag in page.tags.values()}
            pages = len(tif.pages)
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
    data, alpha, depth = tiff_planes(stored, photometric, extrasamples, colormap, name, bits)
    metadata, orientation = _tiff_metadata(tags)
    data, alpha = _upright(data, alpha, orientation)
    colors = {1: "L", 3: "RGB", 4: "CMYK"}[data.shape[2]]
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
            if pages > 1
            else ()
        ),
    )


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
    path of :mod:`convtool.stream` reads TIFF in bands).
    """
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    data, depth = _tiff_samples(stored, name, bits)
    nextra = len(extrasamples)
    ncolour = data.shape[2] - nextra
    has_alpha = bool(nextra) and extrasamples[0] in (1, 2)  # associated / unassociated alpha
    data, alpha = _split_alpha(data[..., : ncolour + has_alpha], "A" if has_alpha else "")
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
        return _unit(stored, (1 << used) - 1), container
    if stored.dtype.kind == "f":
        return stored.astype(np.float32), 32
    raise ImageError(
        f"{name}: a TIFF with {stored.dtype} samples; convtool reads 1-, 8- and 16-bit unsigned "
        "and floating-point TIFF"
    )


def _tiff_metadata(tags: dict[int, Any]) -> tuple[Metadata, int]:
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
    return Metadata(icc, dpi, exif.tobytes() if len(exif) else None, _xmp_upright(xmp)), orientation


def _rational(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]) / float(value[1]) if value[1] else 0.0
    return float(value)


# Matrices -------------------------------------------------------------------------------------


def _read_matrix_file(path: Path, name: str, limit: int) -> Picture:
    fmt = MATRIX_FORMATS[path.suffix.lower()]
    if fmt == "NPY":
        with open(path, "rb") as fp:
            return _matrix_picture(_load_npy(fp, name, limit), fmt, name)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImageError(
            f"{name}: not a text file; a {path.suffix} matrix is rows of numbers"
        ) from None
    return _matrix_picture(parse_matrix(text, name, limit), fmt, name)


def _load_npy(fp: IO[bytes], name: str, limit: int) -> np.ndarray:
    """A .npy array, checked from its header before anything is allocated: real numbers (never
    unpickled), 2-D or 3-D, not empty, within ``limit`` pixels, and as long as the header says."""
    try:
        shape, dtype = read_npy_header(fp)
    except ValueError as exc:
        raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
    if dtype.kind not in "biuf":
        what = "Python objects, which convtool never unpickles" if dtype.hasobject else dtype
        raise ImageError(
            f"{name}: holds {what}; a matrix needs real numbers: save it with a numeric dtype "
            "(float64, int32...)"
        )
    if len(shape) not in (2, 3) or 0 in shape:
        raise ImageError(
            f"{name}: a matrix of shape {tuple(shape)}; convtool needs a non-empty 2-D matrix "
            "(H, W) or a 3-D stack of planes (H, W, C)"
        )
    _check_pixels(int(shape[1]), int(shape[0]), name, limit)
    start = fp.tell()
    available = fp.seek(0, io.SEEK_END) - start
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if available < expected:
        raise ImageError(
            f"{name}: truncated .npy file: its header promises {expected:,} bytes of data for "
            f"shape {tuple(shape)}, but only {available:,} follow"
        )
    try:
        fp.seek(0)
        data = np.load(fp, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
    return data


def parse_matrix(text: str, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Rows of numbers (spaces or commas between entries, ``;`` or new lines between rows,
    ``#`` comments) as a float64 (H, W) array; ImageError for ragged rows and non-numbers.

    ``;`` separates rows on one line only (``0 1; 2 3``): on several lines it is a
    ``;``-separated CSV (where ``,`` may be the decimal mark), refused rather than read as one
    column.
    """
    numbered = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]  # comments first: a ';' in one separates no rows
        if line.strip():
            numbered.append((number, line))
    semicolon = next((n for n, line in numbered if ";" in line), None)
    if len(numbered) > 1 and semicolon is not None:
        raise ImageError(
            f"{name}: line {semicolon} holds ';' but each line of a matrix file is one row; "
            "separate the numbers of a row by spaces or commas (a ';'-separated CSV: save it "
            "with ',' between numbers and '.' as the decimal mark)"
        )
    lines = []
    for _, line in numbered:
        for row in line.split(";"):
            row = row.replace(",", " ").strip()
            if row:
                lines.append(row)
    if not lines:
        raise ImageError(f"{name}: no numbers found; a text matrix is rows such as '0 1 2'")
    widths = [len(line.split()) for line in lines]
    odd = next((i for i, n in enumerate(widths) if n != widths[0]), None)
    if odd is not None:
        raise ImageError(
            f"{name}: not a matrix of numbers: ragged rows (row 1 has {widths[0]} entries, "
            f"row {odd + 1} has {widths[odd]}); every row needs the same number of entries"
        )
    if max_pixels is not None:
        _check_pixels(widths[0], len(lines), name, max_pixels)
    try:
        data = np.loadtxt(lines, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ImageError(
            f"{name}: not a matrix of numbers ({exc}); write rows of numbers with the same "
            "number of entries, separated by spaces or commas"
        ) from None
    if max_pixels is not None:
        _check_pixels(int(data.shape[1]), int(data.shape[0]), name, max_pixels)
    return data


def _matrix_picture(data: np.ndarray, fmt: str, name: str) -> Picture:
    if data.ndim not in (2, 3) or data.shape[0] == 0 or data.shape[1] == 0:
        raise ImageError(
            f"{name}: a matrix of shape {data.shape}; convtool needs a non-empty 2-D matrix "
            "(H, W) or a 3-D stack of planes (H, W, C)"
        )
    data = np.array(data, dtype=np.float64, order="C")
    if not np.isfinite(data).all():
        raise ImageError(f"{name}: holds NaN or infinity; every entry must be a finite number")
    return Picture(
        data=data,
        alpha=None,
        is_matrix=True,
        integer_stored=False,
        depth=64,
        format=fmt,
        mode="matrix",
        colors="matrix",
        metadata=Metadata(),
        name=name,
    )


# Colour -------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Writing


_IMAGE_DEPTHS: dict[str, tuple[int, ...]] = {
    "PNG": (8, 16),
    "TIFF": (8, 16, 32),
    "PPM": (8, 16),
    "PGM": (8, 16),
}
"""Sample depths each image format can hold (formats not listed: 8 only). 32 means float."""

_MATRIX_DEPTHS = (32, 64)
_NO_ALPHA = ("JPEG", "PPM", "PGM", "BMP", "EPS", "PCX", "SPIDER", "XBM", "MPEG", "PDF")
_CMYK_OK = ("JPEG", "TIFF", "PDF", "EPS")
_FORMAT_ALIASES = {"TEXT": "TXT", "TIF": "TIFF", "JPG": "JPEG", "PNM": "PPM"}
_PGM = "PGM"
"""Grey-only Netpbm (``.pgm``, ``--format pgm``): written by Pillow's PPM writer, which picks
P5 or P6 by the colours, so a colour picture is refused rather than written as P6 in a .pgm
(``.ppm`` and ``.pnm`` take any colours)."""
_ICNS_REFUSED = (
    "convtool does not write ICNS (Pillow resizes the picture to the square icon sizes); write "
    ".png, or .ico for an icon of the result's own size"
)
_PBM_REFUSED = (
    "convtool does not write 1-bit PBM (.pbm holds black and white only); write .pgm for grey, "
    "or .png"
)


@dataclass(frozen=True)
class OutputPlan:
    """What will be written: format, sample depth, map, colour layout, and notes for the user.

    ``colors``: ``L``, ``RGB`` or ``CMYK`` for images, ``matrix`` for matrix files;
    ``alpha``: whether an alpha channel is written; ``map_given``: whether the map was asked
    for (``--map``) rather than defaulted — a map asked for clips without a note.
    """

    format: str
    depth: int
    map: str
    colors: str
    alpha: bool
    notes: tuple[str, ...] = ()
    map_given: bool = False
    lossless: bool = False
    """A format of :data:`LOSSLESS_MODES` written in its lossless mode (``--lossless``)."""

    @property
    def is_matrix(self) -> bool:
        return self.format in MATRIX_FORMATS.values()


def format_for_path(path: str | Path) -> str:
    """The output format a file name's extension picks (``.png`` → PNG, ``.npy`` → NPY...)."""
    suffix = Path(path).suffix.lower()
    if suffix in MATRIX_FORMATS:
        return MATRIX_FORMATS[suffix]
    if suffix == ".pgm":
        return _PGM
    if suffix == ".pbm":
        raise UsageError(f"{str(path)!r}: {_PBM_REFUSED}")
    if suffix == ".icns":
        raise UsageError(f"{str(path)!r}: {_ICNS_REFUSED}")
    fmt = _pillow_extensions().get(suffix) if suffix else None
    if fmt is None:
        from PIL import Image

        readable = Image.registered_extensions().get(suffix) if suffix else None
        if readable is not None:
            raise UsageError(
                f"{str(path)!r}: convtool reads {readable} files but cannot write them; give "
                "the output another extension such as .png, .tif, .jpg, .npy or .txt"
            )
        raise UsageError(
            f"cannot tell the output format from {str(path)!r}: give it an extension such as "
            ".png, .tif, .jpg, .npy or .txt"
        )
    return fmt


def format_by_name(name: str) -> str:
    """A format given by name (``png``, ``jpg``, ``tiff``, ``npy``, ``txt``...) as convtool's."""
    upper = name.strip().lstrip(".").upper()
    upper = _FORMAT_ALIASES.get(upper, upper)
    if upper in MATRIX_FORMATS.values() or upper == _PGM:
        return upper
    if upper == "PBM":
        raise UsageError(f"--format {name}: {_PBM_REFUSED}")
    if upper == "ICNS":
        raise UsageError(f"--format {name}: {_ICNS_REFUSED}")
    fmt = _pillow_extensions().get("." + upper.lower())
    if fmt is None and upper in set(_pillow_extensions().values()):
        fmt = upper
    if fmt is None:
        raise UsageError(
            f"unknown format {name!r}; use png, tiff, jpeg, webp, bmp, gif, ppm, npy, txt or csv"
        )
    return fmt


def _pillow_extensions() -> dict[str, str]:
    """Extensions of the formats Pillow can write (``.png`` → ``PNG``)."""
    from PIL import Image

    return {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


_IDENTIFIED_ONLY = ("BUFR", "GRIB", "HDF5", "WMF", "MPEG")
"""Formats Pillow recognises without decoding their pixels (stubs, or a header reader)."""


def image_suffixes() -> frozenset[str]:
    """Extensions of the image files convtool decodes (``.png``, ``.jpg``, ``.tif``...): what
    a directory given as input contributes, besides matrices."""
    from PIL import Image

    return frozenset(
        ext
        for ext, fmt in Image.registered_extensions().items()
        if fmt in Image.OPEN and fmt not in _IDENTIFIED_ONLY
    )


def plan_output(
    picture: Picture,
    format: str,
    *,
    depth: int | None = None,
    map: str | None = None,
    lossless: bool = False,
) -> OutputPlan:
    """Decide how ``picture`` is written as ``format``; UsageError for impossible requests.

    ``depth`` defaults to the input's when the format can hold it, else the nearest it can
    (float → 16-bit PNG, 16-bit → 8-bit JPEG), with a note. ``map`` defaults to ``none`` for
    float outputs (a float TIFF, ``.npy``: they hold every value) and ``clip`` for 8- and
    16-bit images; ``none`` needs a float output.
    """
    fmt = format_by_name(format)
    if map is not None and map not in OUTPUT_MAPS:
        raise UsageError(f"unknown map {map!r}; choose one of {', '.join(OUTPUT_MAPS)}")
    if lossless:  # the lossless mode of a format that has two (WebP); refused for the others
        check_lossless(fmt)
        return replace(plan_output(picture, fmt, depth=depth, map=map), lossless=True)
    notes: list[str] = []
    source_depth = picture.depth
    if fmt in MATRIX_FORMATS.values():
        return _plan_matrix(picture, fmt, depth, map)
    colors, has_alpha = _image_layout(picture)
    if has_alpha and fmt in _NO_ALPHA:
        notes.append(f"{fmt} has no alpha channel: the alpha channel is dropped")
        has_alpha = False
    if colors == "CMYK" and fmt not in _CMYK_OK:
        notes.append(f"{fmt} holds no CMYK: writing RGB")
        colors = "RGB"
    if fmt in ("WEBP", "QOI") and colors == "L":
        colors = "RGB"  # no grey mode (QOI refused grey outright)
    if fmt == "SGI" and colors == "L" and has_alpha:
        colors = "RGB"  # Pillow writes SGI grey, RGB and RGB + alpha, not grey + alpha
    if fmt == _PGM and colors != "L":
        raise UsageError(
            f"a .pgm file holds grey and {picture.name or 'the input'} is colour ({colors}); "
            "add --gray for its luminance, or write .ppm"
        )
    allowed = _IMAGE_DEPTHS.get(fmt, (8,))
    if fmt == "PPM" and colors != "L":
        allowed = (8,)  # Pillow writes 16-bit grey PGM, not 16-bit colour PPM
    if depth is not None:
        if depth not in allowed:
            raise UsageError(
                f"--depth {depth}: {_describe(fmt, colors)} holds {_depths(allowed)}; for "
                f"{_depth_name(depth)} samples write {_holders(depth)}"
            )
        chosen = depth
    else:
        wanted = 32 if source_depth == 64 else source_depth
        chosen = wanted if wanted in allowed else max(d for d in allowed if d <= wanted)
        if chosen != wanted:
            notes.append(
                f"{_describe(fmt, colors)} holds {_depths(allowed)}: writing {chosen}-bit "
                f"(the input is {_depth_name(wanted)}; --depth chooses)"
            )
    chosen_map = map or ("none" if chosen == 32 else "clip")
    if chosen_map == "none" and chosen != 32:
        raise UsageError(
            f"--map none keeps raw values, which only a float output holds (--depth 32 with "
            f".tif, or .npy); for a {chosen}-bit {fmt} choose clip, abs or rescale"
        )
    if fmt == "GIF" and colors != "L":
        notes.append("GIF holds 256 colours: the colours are quantized")
    return OutputPlan(
        fmt, chosen, chosen_map, colors, has_alpha, tuple(notes), map_given=map is not None
    )


LOSSLESS_MODES = ("WEBP",)
"""Formats with a lossy and a lossless mode; ``--lossless`` picks the lossless one."""

_LOSSY_ONLY = ("JPEG", "AVIF")
"""Formats Pillow writes lossy only."""


def check_lossless(fmt: str) -> None:
    """``--lossless`` is refused for a format without the two modes, saying what to do."""
    if fmt in LOSSLESS_MODES:
        return
    if fmt in _LOSSY_ONLY:
        advice = "has no lossless mode: write .webp, or .png or .tif, for an exact result"
    else:
        advice = "has no lossy mode to turn off: leave --lossless out"
    raise UsageError(f"--lossless is WebP's lossless mode, and {fmt} {advice}")


def _plan_matrix(picture: Picture, fmt: str, depth: int | None, map: str | None) -> OutputPlan:
    if depth is not None and depth not in _MATRIX_DEPTHS:
        raise UsageError(
            f"--depth {depth}: a .{fmt.lower()} file holds floating-point numbers; --depth 8 "
            "and 16 are for image outputs (32 writes float32)"
        )
    chosen = depth or (64 if picture.depth == 64 else 32)
    planes = picture.channels + (1 if picture.alpha is not None else 0)
    if fmt != "NPY" and planes > 1:
        what = "an alpha channel" if picture.alpha is not None else f"{planes} planes"
        raise UsageError(
            f"a .{fmt.lower()} file holds one plane and {picture.name or 'the input'} has "
            f"{what}; write .npy, or use --gray"
            + (" and an image without alpha" if picture.alpha is not None else "")
        )
    return OutputPlan(
        fmt, chosen, map or "none", "matrix", picture.alpha is not None, map_given=map is not None
    )


def _image_layout(picture: Picture) -> tuple[str, bool]:
    """The colours (L, RGB, CMYK) and alpha an image written from ``picture`` has.

    A matrix becomes an image by its planes: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    """
    if not picture.is_matrix:
        return picture.colors, picture.alpha is not None
    planes = picture.channels
    if planes not in (1, 2, 3, 4):
        raise UsageError(
            f"{picture.name}: a matrix with {planes} planes cannot be an image (1 grey, 2 grey + "
            "alpha, 3 RGB or 4 RGBA); write .npy"
        )
    return ("L" if planes <= 2 else "RGB"), planes in (2, 4)


def _describe(fmt: str, colors: str) -> str:
    return f"{'colour ' if fmt == 'PPM' and colors != 'L' else ''}{fmt}"


def _depths(depths: tuple[int, ...]) -> str:
    names = [_depth_name(d) for d in depths]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _holders(depth: int) -> str:
    return ".tif or .npy" if depth == 32 else ".png or .tif"


def _depth_name(depth: int) -> str:
    return "float" if depth in (32, 64) else f"{depth}-bit"


# The map: one place -------------------------------------------------------------------------


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


# Encoding -----------------------------------------------------------------------------------


def encode(
    picture: Picture,
    plan: OutputPlan,
    *,
    quality: int | None = None,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
    threads: int | None = None,
) -> bytes:
    """The bytes of ``picture`` written as ``plan`` says: map, round to nearest, clamp, encode.
    ``quality``: for JPEG, WebP and AVIF; None writes a JPEG read from a JPEG with the input's
    quantization tables and subsampling, anything else at :data:`DEFAULT_QUALITY` (see
    :func:`_quality_options`). ``threads``: how many a large PNG is written on (default: every
    core)."""
    if plan.is_matrix:
        return _encode_matrix(picture, plan)
    stored = stored_samples(picture, plan)
    metadata = _fitting_metadata(picture.metadata, plan.colors)
    if plan.format == "TIFF":
        return _encode_tiff(stored, plan, metadata, compress_level)
    if plan.format == "PNG" and plan.depth == 16 and stored.ndim == 3 and stored.shape[2] > 1:
        return _encode_png16(stored, metadata, compress_level)
    return _encode_pillow(stored, plan, metadata, quality, compress_level, threads)


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
            values = _merge_alpha(planes, map_alpha(picture.alpha, plan.map))
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
        return _merge_alpha(
            colour.astype(np.float32), None if alpha is None else alpha.astype(np.float32)
        )
    return _merge_alpha(
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
    return _merge_alpha(data, alpha)


def _image_planes(picture: Picture) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H, W, C) and alpha (H, W) of a picture about to be written as an image."""
    data = picture.data
    if not picture.is_matrix:
        return (data if data.ndim == 3 else data[..., np.newaxis]), picture.alpha
    if data.ndim == 2:
        return data[..., np.newaxis], None
    layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
    return _split_alpha(data, layout)


def _fitting_metadata(metadata: Metadata, colors: str) -> Metadata:
    """Drop an ICC profile whose colour space does not match the colours written."""
    space = metadata.icc_color_space
    expected = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}.get(colors)
    if space is not None and space != expected:
        return replace(metadata, icc_profile=None)
    return metadata


def _pillow_image(stored: np.ndarray, colors: str) -> Any:
    from PIL import Image

    h, w = stored.shape[:2]
    planes = stored.shape[2] if stored.ndim == 3 else 1
    if stored.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(stored.reshape(h, w)))  # I;16 grey
    if colors == "CMYK":
        return Image.frombytes("CMYK", (w, h), np.ascontiguousarray(stored).tobytes())
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes]
    return Image.frombytes(mode, (w, h), np.ascontiguousarray(stored).tobytes())


_LAYOUT_NAMES = {
    "L": "grey",
    "LA": "grey + alpha",
    "RGB": "RGB",
    "RGBA": "RGB + alpha",
    "CMYK": "CMYK",
    "I;16": "16-bit grey",
}


ICO_MAX_SIDE = 256
"""The largest side of an icon in an ICO file."""


def _grey_alpha_gif(stored: np.ndarray) -> tuple[Any, int]:
    """Grey + alpha samples (H, W, 2) as a GIF's palette image and its transparent index.

    Pillow's GIF writer drops the alpha of an ``LA`` image. GIF transparency is on or off: a
    pixel of alpha 0 is transparent, any other opaque. The palette is the grey ramp, so the
    greys are written exactly, with the first grey no opaque pixel uses as the transparent
    index; when all 256 are used, Pillow quantizes the RGBA image instead.
    """
    from PIL import Image

    grey, alpha = stored[..., 0], stored[..., 1]
    used = np.zeros(256, dtype=bool)
    used[grey[alpha > 0]] = True
    free = np.flatnonzero(~used)
    if not free.size:
        rgba = Image.frombytes("LA", grey.shape[::-1], np.ascontiguousarray(stored).tobytes())
        return rgba.convert("RGBA"), 0
    transparent = int(free[0])
    index = np.where(alpha > 0, grey, np.uint8(transparent)).astype(np.uint8)
    im = Image.frombytes("P", grey.shape[::-1], np.ascontiguousarray(index).tobytes())
    im.putpalette(np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes())
    return im, transparent


def _colour_alpha_gif(stored: np.ndarray) -> tuple[Any, int]:
    """RGB + alpha samples (H, W, 4) with transparent pixels as a GIF's palette image and its
    transparent index.

    Pillow quantizes RGBA with alpha among the colours, and transparency survives only when a
    palette entry comes out fully transparent: a few transparent pixels among opaque ones
    were merged away (written opaque, silently). Here the colours are quantized to 255 and
    index 255 is the transparent one, for every pixel of alpha 0 (GIF transparency is on or
    off: any other alpha is opaque).
    """
    from PIL import Image

    height, width = stored.shape[:2]
    rgb = Image.frombytes("RGB", (width, height), np.ascontiguousarray(stored[..., :3]).tobytes())
    quantized = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    index = np.asarray(quantized).copy()
    index[stored[..., 3] == 0] = 255
    palette = (quantized.getpalette() or [])[: 255 * 3]
    palette += [0] * (256 * 3 - len(palette))
    im = Image.frombytes("P", (width, height), index.tobytes())
    im.putpalette(palette)
    return im, 255


def _encode_pillow(
    stored: np.ndarray,
    plan: OutputPlan,
    metadata: Metadata,
    quality: int | None,
    compress_level: int,
    threads: int | None = None,
) -> bytes:
    if (
        plan.format == "PNG"
        and stored.dtype == np.uint8
        and stored.size >= pngwrite.PARALLEL_SAMPLES
    ):
        chunks = _png_metadata_chunks(metadata)
        return pngwrite.encode_png8(stored, compress_level, chunks, threads=threads)
    im = _pillow_image(stored, plan.colors)
    options: dict[str, Any] = {}
    fmt = plan.format
    if fmt == "GIF" and im.mode == "LA":
        im, options["transparency"] = _grey_alpha_gif(stored)
    elif fmt == "GIF" and im.mode == "RGBA" and bool((stored[..., 3] == 0).any()):
        im, options["transparency"] = _colour_alpha_gif(stored)
    if fmt in ("PNG", "JPEG", "WEBP", "TIFF") and metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if fmt in ("PNG", "JPEG", "BMP", "TIFF") and metadata.dpi:
        options["dpi"] = metadata.dpi
    if fmt in ("PNG", "JPEG", "WEBP") and metadata.exif:
        options["exif"] = metadata.exif
    if fmt in ("JPEG", "WEBP") and metadata.xmp:
        options["xmp"] = metadata.xmp
    if fmt == "PNG" and metadata.xmp:
        options["pnginfo"] = _png_xmp(metadata.xmp)
    if fmt == "PNG":
        options["compress_level"] = compress_level
        options["compress_type"] = _png_strategy(im, compress_level)
    if fmt == "ICO":
        # Pillow's default writes shrunken copies only (a 40x30 picture read back as 24x18):
        # the picture itself, at its size; above 256 ICO cannot hold it without resizing
        if max(im.size) > ICO_MAX_SIDE:
            raise ImageError(
                f"ICO holds icons of at most {ICO_MAX_SIDE}x{ICO_MAX_SIDE} pixels and the result "
                f"is {im.width}x{im.height} (Pillow would shrink it); write PNG"
            )
        options["sizes"] = [im.size]
    options.update(_quality_options(fmt, quality, metadata.jpeg, lossless=plan.lossless))
    buffer = io.BytesIO()
    try:
        im.save(buffer, format="PPM" if fmt == _PGM else fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(
            f"Pillow cannot write {_LAYOUT_NAMES.get(im.mode, im.mode)} as {fmt} ({exc}); write "
            "PNG or TIFF, which hold every layout"
        ) from None
    return buffer.getvalue()


_QUALITY_FORMATS = ("JPEG", "WEBP", "AVIF")
"""The formats ``--quality`` applies to."""


def _quality_options(
    fmt: str, quality: int | None, jpeg: JpegCompression | None = None, *, lossless: bool = False
) -> dict[str, Any]:
    """Pillow's save options for ``--quality`` (None: not given) when writing ``fmt``.

    A JPEG from a JPEG input (``jpeg``, its compression) without ``--quality`` is written with
    the input's quantization tables and chroma subsampling, so that filtering does not make
    it larger or smaller by a change of quality (and no ``quality``: Pillow would scale the
    tables by it). Otherwise quality Q, default :data:`DEFAULT_QUALITY`; JPEG at Q ≥ 90 is
    4:4:4 (no chroma subsampling), as ImageMagick writes it. ``lossless`` WebP keeps every
    sample, the colour under transparent pixels too (``exact``); a quality given is then
    libwebp's effort (100: smallest, slowest; Pillow's default 80 otherwise).
    """
    if fmt not in _QUALITY_FORMATS:
        return {}
    if fmt == "WEBP" and lossless:
        effort = {} if quality is None else {"quality": quality}
        return {"lossless": True, "exact": True, **effort}
    if fmt == "JPEG" and quality is None and jpeg is not None:
        options: dict[str, Any] = {"qtables": [list(table) for table in jpeg.qtables]}
        if jpeg.subsampling != -1:
            options["subsampling"] = jpeg.subsampling
        return options
    quality = DEFAULT_QUALITY if quality is None else quality
    options = {"quality": quality}
    if fmt == "JPEG" and quality >= 90:
        options["subsampling"] = 0
    return options


Z_DEFAULT_STRATEGY, Z_RLE = -1, 3
"""zlib strategies (``compress_type`` of Pillow's PNG writer): Z_RLE matches runs only."""

STRATEGY_TRIAL_PIXELS = 1 << 18
"""Pictures of at least this many pixels get their PNG strategy tried on a sample of rows."""


def _png_strategy(im: Any, compress_level: int) -> int:
    """zlib's Z_RLE where it compresses a sample of the rows no worse than the default, else
    the default strategy.

    On photographs and what filters make of them, the PNG row filters leave little for long
    matches: Z_RLE wrote a 4K photograph, its emboss and its Sobel edge map 2.1–2.5× faster
    at level 4 (0.6–0.8 s against 1.3–1.6 s) and 0.1–0.8 % smaller; on text, tiles and
    screenshots it is 3–160× larger. Two bands of 1/64 of the rows each, at 1/4 and 3/4 of the
    height, are written both ways to choose (~3 % of the time of writing the picture).
    """
    if compress_level == 0 or im.width * im.height < STRATEGY_TRIAL_PIXELS:
        return Z_DEFAULT_STRATEGY
    rows = max(16, im.height // 64)
    bands = [
        im.crop((0, top, im.width, top + rows))
        for top in (im.height // 4, im.height * 3 // 4 - rows)
    ]
    sizes = []
    for strategy in (Z_DEFAULT_STRATEGY, Z_RLE):
        size = 0
        for band in bands:
            buffer = io.BytesIO()
            band.save(buffer, format="PNG", compress_level=compress_level, compress_type=strategy)
            size += buffer.tell()
        sizes.append(size)
    return Z_RLE if sizes[1] <= sizes[0] else Z_DEFAULT_STRATEGY


def _encode_png16(stored: np.ndarray, metadata: Metadata, compress_level: int) -> bytes:
    """16-bit colour or grey + alpha PNG through imagecodecs, with Pillow's metadata chunks."""
    import imagecodecs

    encoded = bytes(imagecodecs.png_encode(np.ascontiguousarray(stored), level=compress_level))
    chunks = _png_metadata_chunks(metadata)
    if not chunks:
        return encoded
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    return encoded[:end_of_ihdr] + chunks + encoded[end_of_ihdr:]


def _png_xmp(xmp: bytes) -> Any:
    """A PngInfo holding the XMP packet as PNG keeps it: an iTXt chunk 'XML:com.adobe.xmp'."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    return info


def _png_metadata_chunks(metadata: Metadata) -> bytes:
    """The iCCP, pHYs and eXIf chunks Pillow writes for ``metadata``, copied from a 1×1 PNG
    (imagecodecs writes pixels only; the chunks are taken whole, CRCs included)."""
    from PIL import Image

    options: dict[str, Any] = {}
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.dpi:
        options["dpi"] = metadata.dpi
    if metadata.exif:
        options["exif"] = metadata.exif
    if metadata.xmp:
        options["pnginfo"] = _png_xmp(metadata.xmp)
    if not options:
        return b""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG", **options)
    png = buffer.getvalue()
    position, kept = 8, []
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind = png[position + 4 : position + 8]
        end = position + 12 + length
        if kind in (b"iCCP", b"pHYs", b"eXIf", b"iTXt"):
            kept.append(png[position:end])
        position = end
    return b"".join(kept)


def _encode_tiff(
    stored: np.ndarray, plan: OutputPlan, metadata: Metadata, compress_level: int
) -> bytes:
    import tifffile

    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[..., 0]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, np.ascontiguousarray(stored), **tiff_options(plan, metadata, compress_level)
    )
    return buffer.getvalue()


def tiff_options(plan: OutputPlan, metadata: Metadata, compress_level: int) -> dict[str, Any]:
    """``tifffile`` write options for ``plan``: photometric, alpha, metadata tags, compression.

    Shared by the in-memory writer and the streamed one (:func:`convtool.stream.write_tiff`).
    """
    from PIL import Image

    metadata = _fitting_metadata(metadata, plan.colors)
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
    if compress_level > 0:
        options["compression"] = "zlib"
        options["compressionargs"] = {"level": compress_level}
    options["extratags"] = extratags
    return options


def _encode_matrix(picture: Picture, plan: OutputPlan) -> bytes:
    values = stored_samples(picture, plan)
    if plan.format == "NPY":
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        return buffer.getvalue()
    if values.ndim == 3:
        values = values[..., 0]
    return format_matrix(values, "," if plan.format == "CSV" else " ")


def format_matrix(values: np.ndarray, sep: str = " ") -> bytes:
    """A 2-D array as text rows, each number in its shortest round-trip form (``19``, ``0.1``)."""
    rows = []
    as_python = values.dtype == np.float64
    for row in values:
        items = row.tolist() if as_python else row
        rows.append(sep.join(_format_number(v) for v in items))
    return ("\n".join(rows) + "\n").encode("ascii")


def _format_number(value: Any) -> str:
    text = str(value)
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


# Writing files safely -----------------------------------------------------------------------


def write_output(payload: bytes, target: str | Path | None) -> None:
    """Write ``payload`` to ``target`` atomically, or to standard output for None or ``-``."""
    if target is None or str(target) == "-":
        try:
            sys.stdout.buffer.write(payload)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader is gone (``| head -c 10``): point stdout at devnull so that the final
            # flush at exit stays quiet, and let the caller end the run.
            _silence_stdout()
            raise
        except OSError as exc:
            # A full disk (``>/dev/full``) or a device error: what was written is incomplete
            # anyway; drop what is still buffered so that the exit stays one error line.
            _silence_stdout()
            raise ImageError(
                f"standard output: cannot be written ({exc.strerror or exc}); the output there "
                "is incomplete"
            ) from None
        return
    write_atomic(Path(target), payload)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    finally:
        os.close(devnull)


def write_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the target directory, then rename it over ``path``.

    A failed or interrupted write leaves no partial file and never destroys an existing one;
    ``path`` may be the file that was read. The new file gets the old one's permissions (or
    the usual ones for a new file, 0666 minus the umask).
    """
    with atomic_file(path) as fp:
        fp.write(payload)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed over it when the block ends without error.

    What :func:`write_atomic` does, for writers that write in pieces (the streamed path). A
    symbolic link is followed: the file it points to is replaced and the link stays, as
    ImageMagick and Pillow, which write through it, leave it (``latest.png -> runs/42.png``).
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = path.parent
    if path.is_dir():
        raise ImageError(f"{path}: is a directory; give a file name for the output")
    if not directory.is_dir():
        raise ImageError(
            f"{path}: directory {str(directory)!r} does not exist; create it first "
            "(--out-dir and -o templates create theirs)"
        )
    tmp = ""
    try:
        while not tmp:
            # The name is known before the file exists, so that a signal arriving between its
            # creation and the next line still finds it to remove (mkstemp would hide it).
            tmp = os.path.join(directory, f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                fp = open(tmp, "x+b")  # noqa: SIM115  (by name: tifffile wants fp.name)
            except FileExistsError:
                tmp = ""
        with fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, _permissions(path))
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ImageError(f"{path}: cannot be written ({exc.strerror or exc})") from None
        raise


def _permissions(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
