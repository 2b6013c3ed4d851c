"""Reading any input as a :class:`~convtool.io.picture.Picture`: sniff, then dispatch.

A file named ``.npy``/``.txt``/``.csv`` is a matrix (:mod:`convtool.io.matrix`); other files,
standard input and pipes are sniffed: TIFF by its magic bytes (:mod:`convtool.io.tiff`), then
whatever Pillow reads (:mod:`convtool.io.pillow`), then, for bytes without a name, a ``.npy``
or a text matrix. Whatever a decoder raises on damaged bytes becomes one ImageError.
"""

from __future__ import annotations

import contextlib
import io
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from convtool.choices import (
    DEFAULT_MAX_PIXELS,
)
from convtool.errors import ImageError, quoted
from convtool.io.formats import MATRIX_FORMATS, starts_as
from convtool.io.matrix import (
    load_npy,
    matrix_picture,
    parse_matrix,
    read_matrix_file,
)
from convtool.io.picture import Picture
from convtool.io.pillow import NotAnImage, read_pillow
from convtool.io.pixels import to_gray, to_unit
from convtool.io.source import read_image_stream
from convtool.io.tiff import read_tiff


def read_picture(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = None,
    samples: bool = False,
    page: int | None = None,
) -> Picture:
    """Read an image or a matrix file (``"-"``: standard input, sniffed) as a :class:`Picture`.

    ``gray`` converts colour images to one ITU-R 601-2 luminance channel (Pillow's ``L``
    weights, computed in floating point) and drops a colour ICC profile. Images with more than
    ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`) are refused before decoding.
    ``samples`` keeps the uint8/uint16 samples of 8- and 16-bit images read by Pillow or
    imagecodecs instead of floats (see :class:`Picture`; without ``gray``). ``page``: that
    page of a multi-page TIFF or frame of an animation, 0-based (see :mod:`convtool.io.pages`);
    None: the first, with a note when there are more.
    Raises :class:`~convtool.errors.ImageError` saying what came in and what to do.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    stream = read_stream(source, max_pixels=limit)
    if stream is not None:
        return read_picture_bytes(*stream, gray=gray, max_pixels=limit, samples=samples, page=page)
    path = Path(source)
    name = quoted(source)
    with _opening(name):
        info = path.stat()
        if stat.S_ISREG(info.st_mode) and info.st_size == 0:
            raise ImageError(
                f"{name}: is empty (0 bytes); give an image or a matrix file (it may not "
                "have been written completely)"
            )
        with _decoding(name):
            if path.suffix.lower() in MATRIX_FORMATS:
                picture = read_matrix_file(path, name, limit)
            else:
                with open(path, "rb") as fp:
                    picture = _read_image(fp, name, limit, samples, page)
    return to_gray(to_unit(picture)) if gray else picture


def read_stream(source: str | Path, *, max_pixels: int | None = None) -> tuple[bytes, str] | None:
    """The bytes and name of a source that can be read only once (``"-"``: standard input; a
    pipe such as ``<(...)``, /dev/stdin, a FIFO, a device), read within a bound known before
    reading (:func:`~convtool.io.source.read_image_stream`); None for a file or a directory,
    which :func:`read_picture` reads itself. Decode the bytes with :func:`read_picture_bytes`.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if str(source) == "-":
        with _decoding("standard input"):
            return read_image_stream(sys.stdin.buffer, "standard input", limit), "standard input"
    path = Path(source)
    name = quoted(source)
    with _opening(name):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None  # reported by read_picture
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            return None
        with _decoding(name), open(path, "rb") as fp:
            return read_image_stream(fp, name, limit), name


def read_picture_bytes(
    raw: bytes,
    name: str,
    *,
    gray: bool = False,
    max_pixels: int | None = None,
    samples: bool = False,
    page: int | None = None,
) -> Picture:
    """:func:`read_picture` of bytes read from a stream (:func:`read_stream`), sniffed: an
    image Pillow or tifffile reads, a ``.npy`` or a text matrix."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    with _decoding(name):
        picture = _read_bytes(raw, name, limit, samples, page)
    return to_gray(to_unit(picture)) if gray else picture


@contextlib.contextmanager
def _opening(name: str) -> Iterator[None]:
    """Opening a named source: what the system says about it becomes one :class:`ImageError`."""
    try:
        yield
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory; give an image or matrix file") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot be read ({exc.strerror or exc})") from None


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


def _read_bytes(
    raw: bytes, name: str, limit: int, samples: bool = False, page: int | None = None
) -> Picture:
    """Sniff bytes from standard input: an image Pillow (or tifffile) reads, a .npy, or text."""
    if not raw:
        raise ImageError(f"{name}: is empty; pipe an image or a text matrix into it")
    if starts_as(raw, "NPY"):
        return matrix_picture(load_npy(io.BytesIO(raw), name, limit), "NPY", name)
    try:
        return _read_image(io.BytesIO(raw), name, limit, samples, page)
    except NotAnImage as not_image:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImageError(
                f"{name}: neither an image Pillow reads nor a text matrix ({not_image})"
            ) from None
        return matrix_picture(parse_matrix(text, name, limit), "TXT", name)


def _read_image(
    fp: BinaryIO, name: str, limit: int, samples: bool = False, page: int | None = None
) -> Picture:
    head = fp.read(12)
    fp.seek(0)
    if starts_as(head, "TIFF"):
        return read_tiff(fp, name, limit, page, samples)
    return read_pillow(fp, head, name, limit, samples, page)
