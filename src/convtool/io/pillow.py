"""Images read through Pillow: the mode table that turns each Pillow mode into float planes
(16-bit colour PNG through imagecodecs, 16-bit PPM by hand, where Pillow would cut to 8 bits),
the metadata (ICC, DPI, EXIF, XMP, JPEG compression), the first frame's notes."""

from __future__ import annotations

import functools
import io
from typing import Any, BinaryIO

import numpy as np

from convtool.errors import ImageError
from convtool.io.formats import signature
from convtool.io.jpeg import check_complete, check_scan_size
from convtool.io.picture import JpegCompression, Metadata, Picture, check_pixels, xmp_upright
from convtool.io.pixels import LAYOUTS, colors_of, split_alpha, to_unit, unit, upright
from convtool.io.png_read import spng_pixels

ORIENTATION_TAG = 0x0112


class NotAnImage(ImageError):
    """Pillow could not identify the bytes as an image."""


@functools.cache
def pillow() -> Any:
    """Pillow's ``Image`` module, with its own decompression-bomb check off.

    convtool checks every image against its caller's limit (:func:`check_pixels`, from the
    size in the header, before any pixel is decoded). Pillow's check reads one process-wide
    limit, which cannot serve two reads with different limits at once (threads of a batch):
    it is turned off here, once, the first time convtool opens an image with Pillow, and never
    touched again. Open images with Pillow through this, never ``PIL.Image`` directly, so
    that every open is checked the same way.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image


def read_pillow(
    fp: BinaryIO, head: bytes, name: str, limit: int, samples: bool, frame: int | None = None
) -> Picture:
    """An image Pillow reads, refused before decoding when it has more than ``limit`` pixels;
    ``head`` is the file's first bytes (for messages). ``frame``: that frame (0-based) of an
    animation, as it is shown (Pillow composes it); None: the first, with a note when there
    are more. NotAnImage when Pillow does not know the bytes."""
    from PIL import UnidentifiedImageError

    try:
        im = pillow().open(fp)
    except UnidentifiedImageError:
        kind = signature(head)
        if kind is not None:
            raise ImageError(
                f"{name}: starts as a {kind} file, but Pillow cannot open it: the file is "
                "truncated or damaged"
            ) from None
        raise NotAnImage(
            f"{name}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, "
            "PPM/PGM...) nor a matrix file (.npy, .txt, .csv)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        kind = signature(head)
        if kind is not None:
            raise ImageError(f"{name}: broken or truncated {kind} file ({exc})") from None
        raise ImageError(f"{name}: cannot be read as an image ({exc})") from None
    with im:
        check_pixels(im.width, im.height, name, limit)
        check_scan_size(im, fp, name)
        if frame:
            im.seek(frame)
        picture = _decode(im, fp, name, frame is None)
    return picture if samples else to_unit(picture)


def _decode(im: Any, fp: BinaryIO, name: str, count_frames: bool = True) -> Picture:
    """The picture of an opened Pillow image: its pixels, upright, and its metadata."""
    rawmode = _pillow_rawmode(im)  # before getexif(), which may decode a PNG
    try:
        # The pixels before the metadata: getexif() decodes a PNG, and it may not fail
        # quietly (a damaged file would then be filtered into garbage).
        pixels = spng_pixels(im, fp, rawmode)
        if pixels is None:
            data, alpha, colors, depth, mode = _pillow_planes(im, fp, name, rawmode)
        else:
            data, alpha = split_alpha(pixels, str(im.mode))
            colors, depth, mode = colors_of(data), 8, str(im.mode)
        if im.format in ("JPEG", "MPO"):
            check_complete(im, data, fp, functools.partial(_decode_jpeg, mode=im.mode), name)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{name}: broken or truncated {im.format} file ({exc})") from None
    # a PNG's getexif() would decode the pixels again; libspng decodes only PNGs whose
    # metadata Pillow has read on opening (nothing follows their image data)
    metadata, orientation = _pillow_metadata(im, has_exif=pixels is None or "exif" in im.info)
    fmt = {"MPO": "JPEG", None: "PNG"}.get(im.format, str(im.format))  # MPO: camera JPEG
    notes = _reading_notes(im, name, count_frames)
    data, alpha = upright(data, alpha, orientation)
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
        notes=notes,
    )


def _decode_jpeg(raw: bytes, small: bool, mode: str) -> np.ndarray | None:
    """JPEG bytes decoded by Pillow in ``mode``, at an eighth of their size when ``small``
    (libjpeg's own scaling: every byte of the scan is still read, the rest is cheaper); None
    when decoding fails."""
    try:
        with pillow().open(io.BytesIO(raw)) as im:
            if small:
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            return np.asarray(im if im.mode == mode else im.convert(mode))
    except Exception:  # damaged bytes: the caller counts a failed decode as a difference
        return None


def _reading_notes(im: Any, name: str, count_frames: bool = True) -> tuple[str, ...]:
    """What reading decided for the user: the first frame of several; 1-bit as 8-bit grey."""
    notes = []
    try:
        frames = int(getattr(im, "n_frames", 1)) if count_frames else 1
    except Exception:  # counting frames reads on through the file; damage there is not ours
        frames = 1
    if frames > 1:
        kind = "an animated GIF" if im.format == "GIF" else f"a {im.format} file"
        notes.append(f"{name}: {kind} with {frames} frames; only the first frame is filtered")
    if im.mode == "1":
        notes.append(f"{name}: a 1-bit image, filtered as 8-bit grey (0 and 255) and written so")
    return tuple(notes)


def _pillow_metadata(im: Any, has_exif: bool = True) -> tuple[Metadata, int]:
    """ICC profile, DPI, EXIF (orientation removed) and the orientation, from a Pillow image
    (``has_exif`` False: it has none)."""
    orientation = 1
    exif_bytes = None
    try:
        exif = im.getexif() if has_exif else None
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
    return Metadata(icc, dpi, exif_bytes, xmp_upright(xmp), _jpeg_compression(im)), orientation


def _jpeg_compression(im: Any) -> JpegCompression | None:
    """A JPEG's quantization tables and chroma subsampling; None for other formats."""
    from PIL import JpegImagePlugin

    tables = getattr(im, "quantization", None)
    if not isinstance(im, JpegImagePlugin.JpegImageFile) or not tables:
        return None
    qtables = tuple(tuple(int(v) for v in tables[key]) for key in sorted(tables))
    return JpegCompression(qtables, int(JpegImagePlugin.get_sampling(im)))


def _pillow_planes(
    im: Any, fp: BinaryIO, name: str, rawmode: str
) -> tuple[np.ndarray, np.ndarray | None, str, int, str]:
    """Decode a Pillow image into (data, alpha, colors, depth, mode): the mode table. 8- and
    16-bit data and alpha come as their uint8/uint16 samples (:func:`to_unit` converts them)."""
    mode = str(im.mode)
    if im.format == "PNG" and mode in ("RGB", "RGBA") and ";16" in rawmode:
        # Pillow reads 16-bit colour (and 16-bit grey + alpha) PNG as 8-bit: use imagecodecs,
        # which decodes the first frame only
        if im.tell():
            raise ImageError(
                f"{name}: frame {im.tell()} of a 16-bit colour animated PNG cannot be read at "
                "full depth; convert the frames to 8 bits or to a multi-page TIFF first"
            )
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
        data, alpha = split_alpha(stored, str(im.mode))
        if (mode in ("P", "PA") or (im.format == "GIF" and im.tell())) and _all_grey(data):
            # a GIF's frames after the first read as RGB, from a palette all the same
            data = np.ascontiguousarray(data[..., :1])  # a grey palette: one channel, as L
        return data, alpha, colors_of(data), 8, mode
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
        return unit(stored[..., np.newaxis], 65535), None, "L", 16, mode
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
    layout = LAYOUTS[stored.shape[2]]
    data, alpha = split_alpha(stored, layout)
    depth = 16 if stored.dtype == np.uint16 else 8
    return data, alpha, colors_of(data), depth, mode
