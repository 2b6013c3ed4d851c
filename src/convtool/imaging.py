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

Writing converts back in one place (:func:`encode`): ``--map`` (clip, abs, rescale, none),
then round to nearest, then clamp to the stored range. Across kinds the [0, 1] scale is the
bridge: an image written to ``.npy``/``.txt`` holds its [0, 1] values, a matrix written as an
image maps [0, 1] to 0..max.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from convtool.errors import ImageError

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this (width × height, 100 megapixels) are refused before they
are decoded — a guard against decompression bombs. ``--max-pixels`` raises it."""

MATRIX_FORMATS = {".npy": "NPY", ".txt": "TXT", ".csv": "CSV"}
"""File suffixes read and written as matrices (raw numbers), with their format names."""

LUMA_601 = (0.299, 0.587, 0.114)
"""ITU-R 601-2 luma weights for R, G, B — the ones Pillow's ``convert("L")`` uses."""

ORIENTATION_TAG = 0x0112
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CODECS_HINT = "install the codecs extra: pip install 'convtool[codecs]'"


@dataclass(frozen=True)
class Metadata:
    """What convtool carries from input to output besides the pixels.

    ``exif`` is the EXIF block as Pillow writes it, with the orientation already applied to the
    pixels and therefore reset (the tag removed); ``dpi`` is (x, y) dots per inch.
    """

    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None

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
    ``alpha``: float32 (H, W) in [0, 1] or None (always None for matrices).
    ``integer_stored``: True for 8- and 16-bit images; their stored values 0 and 1.0 are the
    clipping extremes. ``depth``: bits per stored sample: 8, 16, 32 (float32) or 64 (float64
    matrices). ``format``: Pillow's format name (``PNG``, ``JPEG``, ``TIFF``...) or ``NPY``,
    ``TXT``, ``CSV``. ``mode``: the source's Pillow mode (``L``, ``RGBA``, ``I;16``...; for
    TIFF read by tifffile the equivalent; ``matrix`` for matrices). ``colors``: what the
    channels of ``data`` are: ``L``, ``RGB``, ``CMYK``, or ``matrix``.
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
    source: str | Path, *, gray: bool = False, max_pixels: int | None = None
) -> Picture:
    """Read an image or a matrix file (``"-"``: standard input, sniffed) as a :class:`Picture`.

    ``gray`` converts colour images to one ITU-R 601-2 luminance channel (Pillow's ``L``
    weights, computed in floating point) and drops a colour ICC profile. Images with more than
    ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`) are refused before decoding.
    Raises :class:`~convtool.errors.ImageError` saying what came in and what to do.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if str(source) == "-":
        raw = sys.stdin.buffer.read()
        picture = _read_bytes(raw, "standard input", limit)
    else:
        path = Path(source)
        name = str(source)
        try:
            if path.suffix.lower() in MATRIX_FORMATS:
                picture = _read_matrix_file(path, name, limit)
            else:
                with open(path, "rb") as fp:
                    picture = _read_image(fp, name, limit)
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a directory; give an image or matrix file") from None
        except PermissionError:
            raise ImageError(f"{name}: permission denied") from None
    return to_gray(picture) if gray else picture


def _read_bytes(raw: bytes, name: str, limit: int) -> Picture:
    """Sniff bytes from standard input: an image Pillow (or tifffile) reads, a .npy, or text."""
    if not raw:
        raise ImageError(f"{name}: is empty; pipe an image or a text matrix into it")
    if raw.startswith(_NPY_MAGIC):
        return _matrix_picture(_load_npy(io.BytesIO(raw), name, limit), "NPY", name)
    if raw.startswith(_TIFF_MAGICS):
        return _read_image(io.BytesIO(raw), name, limit)
    try:
        return _read_image(io.BytesIO(raw), name, limit)
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


def _read_image(fp: BinaryIO, name: str, limit: int) -> Picture:
    head = fp.read(8)
    fp.seek(0)
    if head.startswith(_TIFF_MAGICS):
        return _read_tiff(fp, name, limit)
    from PIL import Image, UnidentifiedImageError

    with _pillow_without_bomb_check():
        try:
            im = Image.open(fp)
        except UnidentifiedImageError:
            raise _NotAnImage(
                f"{name}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, "
                "PPM/PGM...) nor a matrix file (.npy, .txt, .csv)"
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{name}: cannot be read as an image ({exc})") from None
        with im:
            _check_pixels(im.width, im.height, name, limit)
            rawmode = _pillow_rawmode(im)  # before getexif(), which may decode a PNG
            metadata, orientation = _pillow_metadata(im)
            try:
                data, alpha, colors, depth, mode = _pillow_planes(im, fp, name, rawmode)
            except ImageError:
                raise
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise ImageError(f"{name}: broken or truncated {im.format} file ({exc})") from None
            fmt = str(im.format or "PNG")
    data, alpha = _upright(data, alpha, orientation)
    return Picture(
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
    )


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
    return Metadata(icc_profile=icc, dpi=dpi, exif=exif_bytes), orientation


def _pillow_planes(
    im: Any, fp: BinaryIO, name: str, rawmode: str
) -> tuple[np.ndarray, np.ndarray | None, str, int, str]:
    """Decode a Pillow image into (data, alpha, colors, depth, mode): the mode table."""
    mode = str(im.mode)
    if im.format == "PNG" and mode in ("RGB", "RGBA") and ";16" in rawmode:
        # Pillow reads 16-bit colour (and 16-bit grey + alpha) PNG as 8-bit: use imagecodecs.
        return _read_png16(fp, name, rawmode)
    if im.format == "PPM" and mode == "RGB" and _ppm_maxval(rawmode) > 255:
        raise ImageError(
            f"{name}: a 16-bit colour PPM, which convtool cannot read at full depth (Pillow "
            "would cut it to 8 bits); convert it to a 16-bit PNG or TIFF first"
        )
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
        return _unit(data, 255), _unit_alpha(alpha, 255), _colors(data), 8, mode
    if mode == "CMYK":
        return _unit(np.asarray(im), 255), None, "CMYK", 8, mode
    if mode.startswith("I;16"):
        stored = np.asarray(im).astype(np.uint16)
        return _unit(stored[..., np.newaxis], 65535), None, "L", 16, mode
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


def _ppm_maxval(rawmode: str) -> int:
    tail = rawmode.rpartition(";")[2]
    return int(tail) if tail.isdigit() else 255


def _read_png16(
    fp: BinaryIO, name: str, rawmode: str
) -> tuple[np.ndarray, np.ndarray | None, str, int, str]:
    try:
        import imagecodecs
    except ImportError:
        raise ImageError(
            f"{name}: a 16-bit colour PNG; reading it at full depth needs imagecodecs "
            f"(Pillow would cut it to 8 bits): {_CODECS_HINT}, or convert it to 16-bit TIFF"
        ) from None
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
    scale = 65535 if stored.dtype == np.uint16 else 255
    depth = 16 if stored.dtype == np.uint16 else 8
    return _unit(data, scale), _unit_alpha(alpha, scale), _colors(data), depth, mode


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
    out = np.asarray(stored, dtype=np.float32)
    if out.ndim == 2:
        out = out[..., np.newaxis]
    return np.ascontiguousarray(out / np.float32(maxval))


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
            photometric = int(page.photometric)
            extrasamples = tuple(int(e) for e in page.extrasamples)
            colormap = page.colormap
            tags = {tag.code: tag.value for tag in page.tags.values()}
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
    if stored.ndim == 2:
        stored = stored[..., np.newaxis]
    data, depth, scale = _tiff_samples(stored, name)
    nextra = len(extrasamples)
    ncolour = data.shape[2] - nextra
    alpha = None
    if nextra and extrasamples[0] in (1, 2):  # associated / unassociated alpha
        alpha = data[..., ncolour].copy()
    data = data[..., :ncolour]
    # photometric: 0 min-is-white, 1 min-is-black, 2 RGB, 3 palette, 5 separated (CMYK)
    if photometric == 0 and ncolour == 1:
        data = (1.0 if scale else float(data.max(initial=0.0))) - data
    elif photometric == 3 and ncolour == 1 and colormap is not None:
        index = np.asarray(stored[..., 0], dtype=np.intp)
        data = np.moveaxis(np.asarray(colormap, dtype=np.float32)[:, index], 0, -1) / 65535.0
        depth = 8 if stored.dtype == np.uint8 else 16
    elif (photometric, ncolour) not in ((0, 1), (1, 1), (2, 3), (5, 4)):
        raise ImageError(
            f"{name}: a TIFF with photometric interpretation {photometric} and {ncolour} "
            "colour samples; convtool reads grey, RGB, palette and CMYK TIFF"
        )
    if alpha is not None and extrasamples[0] == 1:
        # associated (premultiplied) alpha: store straight colour, as every other format does
        with np.errstate(divide="ignore", invalid="ignore"):
            data = np.where(alpha[..., np.newaxis] > 0, data / alpha[..., np.newaxis], 0.0)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
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
    )


def _tiff_samples(stored: np.ndarray, name: str) -> tuple[np.ndarray, int, bool]:
    """TIFF samples as float32 in [0, 1] (integers) or as they are (floats): data, depth, scaled."""
    if stored.dtype == np.bool_:
        return stored.astype(np.float32), 8, True
    if stored.dtype == np.uint8:
        return stored.astype(np.float32) / np.float32(255), 8, True
    if stored.dtype == np.uint16:
        return stored.astype(np.float32) / np.float32(65535), 16, True
    if stored.dtype.kind == "f":
        return stored.astype(np.float32), 32, False
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
    return Metadata(icc, dpi, exif.tobytes() if len(exif) else None), orientation


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
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape = np.lib.format.read_array_header_1_0(fp)[0]
        else:
            shape = np.lib.format.read_array_header_2_0(fp)[0]
        if len(shape) >= 2:
            _check_pixels(int(shape[1]), int(shape[0]), name, limit)
        fp.seek(0)
        data = np.load(fp, allow_pickle=False)
    except ImageError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise ImageError(f"{name}: not a numeric .npy array ({exc})") from None
    if data.dtype.kind not in "biuf":
        raise ImageError(f"{name}: holds {data.dtype} values; a matrix needs real numbers")
    return data


def parse_matrix(text: str, name: str, max_pixels: int | None = None) -> np.ndarray:
    """Rows of numbers (spaces or commas between entries, ``;`` or new lines between rows,
    ``#`` comments) as a float64 (H, W) array; ImageError for ragged rows and non-numbers."""
    lines = []
    for line in text.replace(";", "\n").splitlines():
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if line:
            lines.append(line)
    if not lines:
        raise ImageError(f"{name}: no numbers found; a text matrix is rows such as '0 1 2'")
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
