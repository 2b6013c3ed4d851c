"""PNG pixels decoded by libspng are Pillow's, bit for bit, and Pillow decodes the rest."""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convtool.io.pillow as pillow_reader
from convtool.errors import ImageError
from convtool.io import png_read
from convtool.io.read import read_picture

from conftest import CONVERT


def photo(shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: every PNG row filter gets used somewhere."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top, shape[1])[None, :] * np.linspace(0.2, 1, shape[0])[:, None]
    if len(shape) == 3:
        ramp = ramp[..., None] * np.linspace(1, 0.5, shape[2])
    noisy = ramp + rng.normal(0, top / 40, shape)
    return np.clip(np.rint(noisy), 0, top).astype(dtype)


def pillow_only(monkeypatch: pytest.MonkeyPatch, path: Path, **options: object):
    """``read_picture`` with every PNG decoded by Pillow, as before libspng."""
    with monkeypatch.context() as m:
        m.setattr(pillow_reader, "spng_pixels", lambda *args: None)
        return read_picture(path, **options)


def spy_on_spng(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A list that gets True for each PNG libspng decoded, False for each it left to Pillow."""
    used: list[bool] = []
    original = png_read.spng_pixels

    def spy(*args: object) -> np.ndarray | None:
        pixels = original(*args)  # type: ignore[arg-type]
        used.append(pixels is not None)
        return pixels

    monkeypatch.setattr(pillow_reader, "spng_pixels", spy)
    return used


def assert_same_picture(got, expected) -> None:
    """The whole picture: samples (dtype and values), alpha, mode, colours, depth, metadata."""
    assert got.data.dtype == expected.data.dtype
    np.testing.assert_array_equal(got.data, expected.data)
    if expected.alpha is None:
        assert got.alpha is None
    else:
        assert got.alpha is not None and got.alpha.dtype == expected.alpha.dtype
        np.testing.assert_array_equal(got.alpha, expected.alpha)
    assert (got.mode, got.colors, got.depth, got.format) == (
        expected.mode,
        expected.colors,
        expected.depth,
        expected.format,
    )
    assert got.metadata == expected.metadata
    assert got.notes == expected.notes


def interlaced(path: Path) -> Path:
    """``path`` rewritten by ImageMagick as an interlaced (Adam7) PNG, its depth kept."""
    out = path.with_name(path.stem + "-adam7.png")
    subprocess.run([CONVERT, str(path), "-interlace", "PNG", str(out)], check=True)
    with Image.open(out) as im:
        assert im.info.get("interlace") == 1
    return out


def grey_palette() -> Image.Image:
    grey = Image.fromarray(photo((41, 67)))
    return grey.convert("P")  # a palette of greys only: read as one channel


CASES = {
    "L": (lambda: Image.fromarray(photo((41, 67)), "L"), True),
    "RGB": (lambda: Image.fromarray(photo((41, 67, 3)), "RGB"), True),
    "RGBA": (lambda: Image.fromarray(photo((41, 67, 4)), "RGBA"), True),
    "LA": (lambda: Image.fromarray(photo((41, 67, 2)), "LA"), False),
    "P": (lambda: Image.fromarray(photo((41, 67, 3))).quantize(77), False),
    "P grey": (grey_palette, False),
    "I;16": (lambda: Image.fromarray(photo((41, 67), np.uint16)), False),
    "1": (lambda: Image.fromarray(photo((41, 67)) > 128), False),
}
"""Pillow images to save as PNG, and whether libspng decodes them (8-bit L, RGB, RGBA)."""


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("adam7", [False, True])
def test_decoded_pixels_are_pillows(tmp_path, monkeypatch, case, adam7):
    """8- and 16-bit, grey, RGB, RGBA, palettes, 1-bit, interlaced or not: the picture read is
    the one Pillow's decoder gives, samples and floats; libspng decodes the plain 8-bit ones."""
    if adam7 and not Path(CONVERT).exists():
        pytest.skip("ImageMagick's convert writes the interlaced PNGs")
    make, by_spng = CASES[case]
    path = tmp_path / "in.png"
    make().save(path)
    if adam7:
        path = interlaced(path)
        with Image.open(path) as im:  # ImageMagick may store it otherwise (a grey palette: L)
            by_spng = im.mode in png_read.MODES
    for samples in (True, False):
        expected = pillow_only(monkeypatch, path, samples=samples)
        used = spy_on_spng(monkeypatch)
        assert_same_picture(read_picture(path, samples=samples), expected)
        assert used == [by_spng]


def test_sixteen_bit_colour_png_keeps_its_depth(tmp_path, monkeypatch):
    """16-bit RGB and RGBA go through imagecodecs' libpng decoder as before (at full depth)."""
    import imagecodecs

    for channels in (3, 4):
        stored = photo((23, 31, channels), np.uint16, seed=channels)
        path = tmp_path / f"c{channels}.png"
        path.write_bytes(imagecodecs.png_encode(stored))
        picture = read_picture(path, samples=True)
        assert picture.depth == 16 and picture.data.dtype == np.uint16
        np.testing.assert_array_equal(picture.data, stored[..., :3])
        assert_same_picture(picture, pillow_only(monkeypatch, path, samples=True))


def test_imagemagick_pngs_with_gamma_and_chromaticities(tmp_path, monkeypatch):
    """ImageMagick writes gAMA, cHRM and bKGD chunks: neither decoder applies them."""
    if not Path(CONVERT).exists():
        pytest.skip("needs ImageMagick's convert")
    src = tmp_path / "src.png"
    Image.fromarray(photo((37, 52, 3))).save(src)
    path = tmp_path / "im.png"
    subprocess.run(
        [CONVERT, str(src), "-gamma", "1.0", "-background", "red", str(path)], check=True
    )
    kinds = chunk_kinds(path.read_bytes())
    assert b"gAMA" in kinds, kinds
    used = spy_on_spng(monkeypatch)
    got = read_picture(path, samples=True)
    assert used == [True]
    assert_same_picture(got, pillow_only(monkeypatch, path, samples=True))


def chunk_kinds(raw: bytes) -> list[bytes]:
    kinds, position = [], 8
    while position < len(raw):
        length, kind = struct.unpack_from(">I4s", raw, position)
        kinds.append(kind)
        position += 12 + length
    return kinds


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunk_after_image_data(raw: bytes, extra: bytes) -> bytes:
    """The PNG ``raw`` with the chunk ``extra`` inserted before its IEND."""
    end = raw.rindex(b"IEND") - 4
    return raw[:end] + extra + raw[end:]


def test_metadata_after_the_image_data_is_read_by_pillow(tmp_path, monkeypatch):
    """An EXIF block or XMP text after the image data: Pillow decodes the file (it reads them
    only while decoding), and the metadata is kept."""
    buffer = io.BytesIO()
    Image.fromarray(photo((20, 30, 3))).save(buffer, format="PNG")
    exif = Image.Exif()
    exif[0x010F] = "a camera"  # Make
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    for extra in (
        chunk(b"eXIf", exif.tobytes()[6:]),
        chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp),
    ):
        path = tmp_path / "late.png"
        path.write_bytes(with_chunk_after_image_data(buffer.getvalue(), extra))
        used = spy_on_spng(monkeypatch)
        got = read_picture(path, samples=True)
        assert used == [False]
        assert got.metadata.exif is not None or got.metadata.xmp is not None
        assert_same_picture(got, pillow_only(monkeypatch, path, samples=True))


def test_metadata_before_the_image_data_is_kept(tmp_path, monkeypatch):
    """EXIF and DPI written before the image data, as Pillow writes them: libspng decodes the
    pixels, and the metadata and orientation are Pillow's."""
    exif = Image.Exif()
    exif[0x010F] = "a camera"
    exif[0x0112] = 6  # rotated: the picture is turned upright
    path = tmp_path / "meta.png"
    Image.fromarray(photo((20, 30, 3))).save(path, exif=exif, dpi=(300, 300))
    assert chunk_kinds(path.read_bytes()).index(b"eXIf") < chunk_kinds(path.read_bytes()).index(
        b"IDAT"
    )
    used = spy_on_spng(monkeypatch)
    got = read_picture(path, samples=True)
    assert used == [True]
    assert got.data.shape[:2] == (30, 20)  # turned upright
    assert got.metadata.exif is not None and got.metadata.dpi is not None
    assert_same_picture(got, pillow_only(monkeypatch, path, samples=True))


def test_a_damaged_png_gets_pillows_verdict(tmp_path, monkeypatch):
    """Image data cut short or corrupted: libspng's failure hands the file to Pillow, whose
    error (or picture) is what the user sees, as before."""
    buffer = io.BytesIO()
    Image.fromarray(photo((40, 50, 3))).save(buffer, format="PNG")
    raw = bytearray(buffer.getvalue())
    start = raw.index(b"IDAT") + 40
    raw[start : start + 16] = bytes(16)  # corrupted data, the CRC left wrong
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(raw))

    def outcome(read):
        try:
            return read()
        except ImageError as exc:
            return str(exc)

    got = outcome(lambda: read_picture(path, samples=True))
    expected = outcome(lambda: pillow_only(monkeypatch, path, samples=True))
    if isinstance(expected, str):
        assert got == expected
    else:
        assert_same_picture(got, expected)


def test_without_libspng_pillow_decodes(tmp_path, monkeypatch):
    """imagecodecs absent (or built without libspng): Pillow decodes, the same picture."""
    path = tmp_path / "in.png"
    Image.fromarray(photo((20, 30, 3))).save(path)
    expected = read_picture(path, samples=True)
    monkeypatch.setitem(__import__("sys").modules, "imagecodecs", None)  # import fails
    assert png_read.spng_decoder() is None
    used = spy_on_spng(monkeypatch)
    assert_same_picture(read_picture(path, samples=True), expected)
    assert used == [False]


@pytest.mark.parametrize(
    "tail, plain",
    [
        ([b"IDAT", b"IEND"], True),
        ([b"IDAT", b"IDAT", b"IEND"], True),
        ([b"IDAT", b"tEXt", b"IEND"], False),
        ([b"IDAT", b"tIME", b"IEND"], True),
        ([b"IDAT", b"eXIf", b"IEND"], False),
        ([b"IDAT", b"fdAT", b"IEND"], False),
        ([b"IDAT"], False),  # no end
        ([b"IEND"], False),  # no image data
    ],
)
def test_nothing_after_image_data(tail, plain):
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes(13))
    raw = head + b"".join(chunk(kind, b"xy") for kind in tail)
    assert png_read.nothing_after_image_data(raw) is plain
    assert png_read.nothing_after_image_data(raw[:-3]) is False  # cut inside a chunk


def test_imagemagicks_dates_after_the_image_data_are_not_metadata():
    """ImageMagick writes ``date:create`` and ``date:modify`` text after the image data: not
    read by convtool, so libspng may decode; other text there (an EXIF profile) is not."""
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes(13)) + chunk(b"IDAT", b"xy")
    end = chunk(b"IEND", b"")
    dates = chunk(b"tEXt", b"date:create\x002026-01-01") + chunk(b"zTXt", b"date:modify\0\0x")
    assert png_read.nothing_after_image_data(head + dates + end)
    profile = chunk(b"zTXt", b"Raw profile type exif\0\0x")
    assert not png_read.nothing_after_image_data(head + dates + profile + end)


def test_libspng_is_there():
    """imagecodecs is a dependency, with libspng in its wheels: the fast path is the one run."""
    assert png_read.spng_decoder() is not None
