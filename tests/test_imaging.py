"""The pixel policy: every mode and format in, map → round → clamp out, metadata, safe writes."""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps, JpegImagePlugin

from convtool.errors import ImageError, UsageError
from convtool.io.encode import encode
from convtool.io.files import write_atomic, write_output
from convtool.io.formats import format_by_name, format_for_path
from convtool.io.picture import Metadata, Picture
from convtool.io.pixels import LUMA_601, map_values, quantize, to_unit
from convtool.io.plan import plan_output
from convtool.io.read import DEFAULT_MAX_PIXELS, read_picture

# A small asymmetric pattern: every value differs, so flips and transposes show.
STORED8 = np.array([[0, 51, 102, 255], [1, 128, 200, 254], [17, 34, 68, 136]], dtype=np.uint8)


def rgb8() -> np.ndarray:
    return np.stack([STORED8, 255 - STORED8, STORED8[::-1, ::-1]], axis=-1)


def save(tmp_path, name: str, image: Image.Image, **options) -> str:
    path = tmp_path / name
    image.save(path, **options)
    return str(path)


def write(picture: Picture, path, **plan_options) -> list[str]:
    plan = plan_output(picture, format_for_path(path), **plan_options)
    write_atomic(path, encode(picture, plan))
    return list(plan.notes)


def icc_profile(space: bytes) -> bytes:
    """A minimal ICC header (Pillow and tifffile carry it as opaque bytes)."""
    header = bytearray(128)
    header[0:4] = (128).to_bytes(4, "big")
    header[12:16] = b"mntr"
    header[16:20] = space
    header[36:40] = b"acsp"
    return bytes(header) + b"\0\0\0\0"


# Reading: the mode table ---------------------------------------------------------------------


def test_grey_8bit_is_value_over_255(tmp_path):
    picture = read_picture(save(tmp_path, "g.png", Image.fromarray(STORED8)))
    assert picture.data.dtype == np.float32 and picture.data.shape == (3, 4, 1)
    np.testing.assert_array_equal(picture.data[..., 0], STORED8.astype(np.float32) / 255)
    assert picture.alpha is None and picture.integer_stored and picture.depth == 8
    assert (picture.format, picture.mode, picture.colors) == ("PNG", "L", "L")
    assert not picture.is_matrix


def test_rgba_splits_alpha(tmp_path):
    stored = np.dstack([rgb8(), STORED8[::-1]])
    picture = read_picture(save(tmp_path, "a.png", Image.fromarray(stored)))
    np.testing.assert_array_equal(picture.data, rgb8().astype(np.float32) / 255)
    np.testing.assert_array_equal(picture.alpha, STORED8[::-1].astype(np.float32) / 255)
    assert picture.colors == "RGB"


def test_la_splits_alpha(tmp_path):
    stored = np.dstack([STORED8, 255 - STORED8])
    picture = read_picture(
        save(
            tmp_path,
            "la.png",
            Image.fromarray(
                stored,
            ),
        )
    )
    np.testing.assert_array_equal(picture.data[..., 0], STORED8 / np.float32(255))
    np.testing.assert_array_equal(picture.alpha, (255 - STORED8) / np.float32(255))


def test_palette_expands_and_transparency_becomes_alpha(tmp_path):
    im = Image.fromarray(STORED8 % 4, mode=None).convert("P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    opaque = read_picture(save(tmp_path, "p.png", im))
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.float32) / 255
    np.testing.assert_array_equal(opaque.data, colours[STORED8 % 4])
    assert opaque.alpha is None and opaque.mode == "P"
    keyed = read_picture(save(tmp_path, "t.png", im, transparency=1))
    np.testing.assert_array_equal(keyed.alpha, np.where(STORED8 % 4 == 1, 0.0, 1.0))


def test_one_bit_reads_as_grey(tmp_path):
    bits = STORED8 > 100
    picture = read_picture(save(tmp_path, "b.png", Image.fromarray(bits)))
    np.testing.assert_array_equal(picture.data[..., 0], bits.astype(np.float32))
    assert picture.mode == "1" and picture.depth == 8


def test_grey_16bit_png_is_value_over_65535(tmp_path):
    stored = (STORED8.astype(np.uint16) * 257 + 3).astype(np.uint16)
    picture = read_picture(save(tmp_path, "g16.png", Image.fromarray(stored)))
    np.testing.assert_array_equal(picture.data[..., 0], stored.astype(np.float32) / 65535)
    assert picture.depth == 16 and picture.integer_stored


def test_16bit_grey_png_with_a_transparent_colour_key_has_alpha(tmp_path):
    """A regression: the tRNS key of a 16-bit grey PNG was ignored (8-bit ones become alpha)."""
    stored = (STORED8.astype(np.uint16) * 257 + 3).astype(np.uint16)
    key = int(stored[1, 2])
    path = save(tmp_path, "t16.png", Image.fromarray(stored), transparency=key)
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.data[..., 0], stored.astype(np.float32) / 65535)
    assert picture.alpha is not None
    np.testing.assert_array_equal(picture.alpha, (stored != key).astype(np.float32))


def test_16bit_pgm_opened_as_mode_i_is_scaled_by_65535(tmp_path):
    stored = np.array([[0, 1000], [40000, 65535]], dtype=">u2")
    path = tmp_path / "g.pgm"
    path.write_bytes(b"P5\n2 2\n65535\n" + stored.tobytes())
    picture = read_picture(path)
    assert picture.mode == "I" and picture.depth == 16
    np.testing.assert_allclose(picture.data[..., 0], stored / 65535, rtol=1e-7)


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_16bit_colour_png_at_full_depth(tmp_path, planes):
    stored = np.random.default_rng(planes).integers(0, 65536, (5, 7, planes)).astype(np.uint16)
    path = tmp_path / "c16.png"
    path.write_bytes(imagecodecs.png_encode(stored))
    picture = read_picture(path)
    colour = 1 if planes == 2 else 3
    np.testing.assert_array_equal(picture.data, stored[..., :colour] / np.float32(65535))
    if planes in (2, 4):
        np.testing.assert_array_equal(picture.alpha, stored[..., -1] / np.float32(65535))
    assert picture.depth == 16 and picture.colors == ("L" if planes == 2 else "RGB")


@pytest.mark.parametrize("maxval", [65535, 4095, 1000])
def test_16bit_colour_ppm_at_full_depth_not_cut_to_8_bits(tmp_path, maxval):
    """Pillow reads a 16-bit P6 as 8-bit; convtool reads value / maxval (ImageMagick's PPM)."""
    stored = np.random.default_rng(maxval).integers(0, maxval, (3, 5, 3), endpoint=True)
    binary = tmp_path / "c.ppm"
    binary.write_bytes(b"P6\n5 3\n%d\n" % maxval + stored.astype(">u2").tobytes())
    plain = tmp_path / "p.ppm"
    rows = "\n".join(" ".join(map(str, row)) for row in stored.reshape(3, 15))
    plain.write_text(f"P3\n# a comment\n5 3\n{maxval}\n{rows}\n")
    for path in (binary, plain):
        picture = read_picture(path)
        assert (picture.depth, picture.colors, picture.data.shape) == (16, "RGB", (3, 5, 3))
        np.testing.assert_allclose(picture.data, stored / maxval, rtol=0, atol=1e-7)
    if maxval == 65535:  # the stored samples themselves, as for 16-bit PNG
        np.testing.assert_array_equal(read_picture(binary, samples=True).data, stored)


def test_16bit_colour_ppm_cut_short_or_over_its_maxval_is_refused(tmp_path):
    path = tmp_path / "c.ppm"
    path.write_bytes(b"P6\n2 1\n65535\n" + np.array([1, 2, 3, 4], ">u2").tobytes())
    with pytest.raises(ImageError, match="truncated PPM file"):
        read_picture(path)
    path.write_bytes(b"P6\n1 1\n1000\n" + np.array([1, 2, 1001], ">u2").tobytes())
    with pytest.raises(ImageError, match="above its maxval 1000"):
        read_picture(path)


def test_cmyk_keeps_four_channels(tmp_path):
    cmyk = np.zeros((8, 8, 4), np.uint8) + np.array([10, 100, 200, 50], np.uint8)
    im = Image.frombytes("CMYK", (8, 8), cmyk.tobytes())
    picture = read_picture(save(tmp_path, "c.jpg", im, quality=100))
    assert picture.colors == "CMYK" and picture.data.shape == (8, 8, 4)
    np.testing.assert_allclose(picture.data, cmyk / 255, atol=2 / 255)


@pytest.mark.parametrize(
    ("dtype", "depth", "scale"),
    [(np.uint8, 8, 255), (np.uint16, 16, 65535), (np.float32, 32, 1)],
)
def test_tiff_at_full_depth(tmp_path, dtype, depth, scale):
    rng = np.random.default_rng(depth)
    if depth == 32:
        stored = rng.normal(0.5, 1.0, (4, 6, 3)).astype(np.float32)  # outside [0, 1] too
    else:
        stored = rng.integers(0, scale + 1, (4, 6, 3)).astype(dtype)
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, stored, photometric="rgb")
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.data, stored.astype(np.float32) / np.float32(scale))
    assert picture.depth == depth and picture.format == "TIFF"
    assert picture.integer_stored == (depth != 32)


def test_tiff_planar_alpha_and_min_is_white(tmp_path):
    stored = rgb8()
    alpha = STORED8[::-1]
    path = tmp_path / "planar.tif"
    planar = np.moveaxis(np.dstack([stored, alpha]), -1, 0)
    tifffile.imwrite(
        path, planar, photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"]
    )
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.data, stored / np.float32(255))
    np.testing.assert_array_equal(picture.alpha, alpha / np.float32(255))
    white = tmp_path / "white.tif"
    tifffile.imwrite(white, STORED8, photometric="miniswhite")
    np.testing.assert_allclose(
        read_picture(white).data[..., 0], 1 - STORED8 / np.float32(255), atol=1e-7
    )


@pytest.mark.parametrize(
    "step", [256, 257, 1], ids=["pillow-x256", "libtiff-x257", "8-bit-entries"]
)
def test_palette_tiff_colours_are_the_palettes_8bit_levels(tmp_path, step):
    """A regression: entries / 65535 turned Pillow's white (255·256) into 254 and shifted
    every colour; libtiff reads an 8-bit image's entries by their high byte."""
    levels = np.random.default_rng(step).integers(0, 256, (3, 256))
    levels[:, 0], levels[:, 1] = 255, 0  # white and black
    index = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, index, photometric="palette", colormap=(levels * step).astype(np.uint16))
    picture = read_picture(path)
    expected = np.moveaxis(levels[:, index], 0, -1).astype(np.uint8)
    assert (picture.depth, picture.colors) == (8, "RGB")
    np.testing.assert_array_equal(picture.data, expected / np.float32(255))
    if step != 1:  # Pillow agrees (it reads the palette by the same high bytes)
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)


def test_palette_tiff_written_by_pillow_reads_back_exactly(tmp_path):
    stored = rgb8()
    path = save(tmp_path, "p.tif", Image.fromarray(stored).convert("P", colors=12))
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(
        read_picture(path, samples=False).data, expected / np.float32(255)
    )


def test_jpeg_compressed_ycbcr_tiff_is_read_as_rgb(tmp_path):
    """JPEG-in-TIFF (scanners, slides) is stored as YCbCr, which the JPEG decoder turns into RGB:
    it used to be refused for its photometric interpretation."""
    stored = np.repeat(np.repeat(rgb8(), 4, axis=0), 4, axis=1)
    path = tmp_path / "j.tif"
    tifffile.imwrite(path, stored, photometric="rgb", compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.photometric == 6  # YCbCr, as tifffile and libtiff write it
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))  # libjpeg's decoding through Pillow
    picture = read_picture(path)
    assert picture.colors == "RGB" and picture.depth == 8
    np.testing.assert_array_equal(picture.data, expected / np.float32(255))
    ycbcr = tmp_path / "y.tif"  # raw YCbCr samples: refused, with the kind named
    tifffile.imwrite(ycbcr, stored, photometric="ycbcr", subsampling=(1, 1))
    with pytest.raises(
        ImageError, match=r"photometric interpretation 6 \(YCbCr\).*-colorspace sRGB"
    ):
        read_picture(ycbcr)


@pytest.mark.parametrize(("bits", "dtype"), [(2, np.uint8), (4, np.uint8), (12, np.uint16)])
def test_tiff_of_fewer_bits_than_its_container_spans_the_full_scale(tmp_path, bits, dtype):
    """A regression: a 12-bit scan read as value / 65535 (1/16 of its brightness), 4-bit grey
    as value / 255; libtiff's readers (ImageMagick) give value / (2^bits − 1)."""
    top = (1 << bits) - 1
    stored = np.random.default_rng(bits).integers(0, top, (5, 7), endpoint=True).astype(dtype)
    stored[0, 0], stored[0, 1] = top, 0
    tifffile.imwrite(tmp_path / "b.tif", stored, bitspersample=bits)
    picture = read_picture(tmp_path / "b.tif")
    assert picture.depth == 8 * np.dtype(dtype).itemsize
    np.testing.assert_allclose(picture.data[..., 0], stored / top, rtol=0, atol=1e-7)
    tifffile.imwrite(tmp_path / "w.tif", stored, bitspersample=bits, photometric="miniswhite")
    np.testing.assert_allclose(
        read_picture(tmp_path / "w.tif").data[..., 0], 1 - stored / top, atol=1e-7
    )


def test_a_multipage_tiff_says_only_its_first_page_is_filtered(tmp_path):
    pages = [STORED8, STORED8[::-1], 255 - STORED8]
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as tif:
        for page in pages:
            tif.write(page)
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.data[..., 0], STORED8 / np.float32(255))
    assert picture.notes == (f"{path}: a TIFF with 3 pages; only the first page is filtered",)
    tifffile.imwrite(tmp_path / "one.tif", STORED8)
    assert read_picture(tmp_path / "one.tif").notes == ()


def test_gif_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((3, 3), v, np.uint8)).convert("P") for v in (10, 200)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    picture = read_picture(path)
    np.testing.assert_allclose(picture.data, np.full((3, 3, 1), 10 / 255), atol=1e-7)
    assert picture.notes == (
        f"{path}: an animated GIF with 2 frames; only the first frame is filtered",
    )


def test_a_grey_palette_is_one_grey_channel_and_a_colour_one_rgb(tmp_path):
    """A palette whose colours are all grey (grey GIF, 1-bit BMP) reads as L, not RGB."""
    grey = Image.fromarray(STORED8).convert("P")  # Pillow's L → P: a grey palette
    picture = read_picture(save(tmp_path, "g.gif", grey))
    assert (picture.colors, picture.data.shape) == ("L", (3, 4, 1))
    np.testing.assert_array_equal(picture.data[..., 0], STORED8 / np.float32(255))
    bilevel = Image.fromarray(STORED8 > 100).convert("P")  # a 2-entry black/white palette
    picture = read_picture(save(tmp_path, "b.bmp", bilevel))
    np.testing.assert_array_equal(picture.data[..., 0], (STORED8 > 100).astype(np.float32))
    coloured = read_picture(save(tmp_path, "c.gif", Image.fromarray(rgb8()).convert("P")))
    assert (coloured.colors, coloured.data.shape) == ("RGB", (3, 4, 3))
    transparent = Image.fromarray(STORED8).convert("P")
    transparent.info["transparency"] = int(STORED8[0, 0])
    picture = read_picture(save(tmp_path, "t.png", transparent))
    assert picture.colors == "L" and picture.alpha is not None
    np.testing.assert_array_equal(picture.alpha, (STORED8[0, 0] != STORED8).astype(np.float32))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_picture_as_seen(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    im = Image.fromarray(rgb8())
    path = save(tmp_path, "o.png", im, exif=exif.tobytes())
    with Image.open(path) as im:
        on_screen = np.asarray(ImageOps.exif_transpose(im))
    picture = read_picture(path)
    np.testing.assert_array_equal(picture.data, on_screen / np.float32(255))
    assert picture.metadata.exif is None or 0x0112 not in _exif(picture.metadata.exif)


def test_tiff_orientation_tag(tmp_path):
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, STORED8, extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(
        read_picture(path).data[..., 0], np.rot90(STORED8, -1) / np.float32(255)
    )


def test_gray_uses_itu_601_weights_and_keeps_alpha(tmp_path):
    stored = np.dstack([rgb8(), STORED8])
    path = save(tmp_path, "a.png", Image.fromarray(stored), icc_profile=icc_profile(b"RGB "))
    picture = read_picture(path, gray=True)
    rgb = rgb8().astype(np.float32) / 255
    expected = sum(np.float32(w) * rgb[..., i] for i, w in enumerate(LUMA_601))
    np.testing.assert_allclose(picture.data[..., 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(picture.alpha, STORED8 / np.float32(255))
    assert picture.colors == "L" and picture.metadata.icc_profile is None
    # and it matches Pillow's own "L" within its 8-bit rounding
    pillow = np.asarray(Image.fromarray(rgb8()).convert("L")) / 255
    np.testing.assert_allclose(picture.data[..., 0], pillow, atol=0.5 / 255 + 1e-6)


# Reading: matrices and stdin -----------------------------------------------------------------


def test_matrices_are_raw_float64(tmp_path):
    np.save(tmp_path / "m.npy", np.arange(12).reshape(3, 4))
    (tmp_path / "m.txt").write_text("# a comment\n0 1 2 3\n4, 5, 6, 7 # end\n8 9 10 11\n")
    (tmp_path / "m.csv").write_text("0,1,2,3\n4,5,6,7\n8,9,10,11\n")
    for name in ("m.npy", "m.txt", "m.csv"):
        picture = read_picture(tmp_path / name)
        assert picture.is_matrix and picture.data.dtype == np.float64
        np.testing.assert_array_equal(picture.data, np.arange(12.0).reshape(3, 4))
        assert picture.alpha is None and not picture.integer_stored and picture.depth == 64
    np.save(tmp_path / "s.npy", np.ones((2, 3, 3)) * 300.0)
    np.testing.assert_array_equal(read_picture(tmp_path / "s.npy").data, np.full((2, 3, 3), 300))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\n3\n", "not a matrix of numbers"),
        ("1 x\n", "not a matrix of numbers"),
        ("# nothing\n", "no numbers"),
        ("1 nan\n", "NaN or infinity"),
        # a ';'-separated CSV (Excel in locales with a decimal comma) used to be read as a
        # single column, 4x1 here, silently
        ("1;2\n3;4\n", "line 1 holds ';' but each line of a matrix file is one row"),
        ("1 2\n3;4\n", "line 2 holds ';'"),
    ],
)
def test_bad_text_matrices(tmp_path, text, message):
    (tmp_path / "m.txt").write_text(text)
    with pytest.raises(ImageError, match=message):
        read_picture(tmp_path / "m.txt")


def test_semicolons_separate_rows_on_one_line_and_never_in_a_comment(tmp_path):
    (tmp_path / "one.txt").write_text("0 1; 2 3\n")
    np.testing.assert_array_equal(read_picture(tmp_path / "one.txt").data, [[0, 1], [2, 3]])
    (tmp_path / "c.txt").write_text("# rows; columns\n0 1\n2 3 # a; b\n")  # was a 'columns' row
    np.testing.assert_array_equal(read_picture(tmp_path / "c.txt").data, [[0, 1], [2, 3]])


def test_npy_is_read_without_pickle(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match=r"o\.npy"):
        read_picture(tmp_path / "o.npy")


def test_missing_file_and_junk(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_picture(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"this is not a picture")
    with pytest.raises(ImageError, match="not an image Pillow can read"):
        read_picture(tmp_path / "junk.png")


def _png(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _chunks(png: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk of a PNG."""
    position, chunks = 8, []
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        chunks.append((position, png[position + 4 : position + 8]))
        position += 12 + length
    return chunks


def _with_crc(png: bytearray, offset: int) -> bytes:
    """The PNG with the CRC of the chunk at ``offset`` made right again."""
    length = int.from_bytes(png[offset : offset + 4], "big")
    crc = zlib.crc32(bytes(png[offset + 4 : offset + 8 + length]))
    png[offset + 8 + length : offset + 12 + length] = crc.to_bytes(4, "big")
    return bytes(png)


def test_a_png_whose_zlib_stream_is_damaged_is_refused_not_half_decoded(tmp_path):
    """A regression: getexif() decoded the PNG first and swallowed the decoder's error, and
    the half-decoded pixels were filtered. Here the CRC is right and only zlib can tell."""
    png = _png(np.tile(rgb8(), (8, 8, 1)), compress_level=9)
    (idat,) = [offset for offset, kind in _chunks(png) if kind == b"IDAT"]
    damaged = bytearray(png)
    damaged[idat + 8 + 40] ^= 0xFF
    (tmp_path / "z.png").write_bytes(_with_crc(damaged, idat))
    with pytest.raises(ImageError, match=r"z\.png: broken or truncated PNG file"):
        read_picture(tmp_path / "z.png")


def test_truncated_pngs_are_refused_or_read_whole(tmp_path):
    """Cut anywhere, a PNG is refused, unless every pixel was there: what goes missing is then
    only zlib's checksum, the last CRC or IEND (as Pillow and ImageMagick, convtool reads it)."""
    stored = np.tile(rgb8(), (8, 8, 1))
    png = _png(stored)
    path = tmp_path / "t.png"
    refused = 0
    for end in range(9, len(png)):
        path.write_bytes(png[:end])
        try:
            picture = read_picture(path, samples=True)
        except ImageError as exc:
            assert str(exc).startswith(f"{path}: ") and ("truncated" in str(exc)), exc
            refused += 1
        else:
            assert end >= len(png) - 4 - 12 - 4 - 4  # adler32, IDAT's CRC, IEND
            np.testing.assert_array_equal(picture.data, stored)
    assert refused >= len(png) - 9 - 24
    path.write_bytes(png + b"trailing bytes after IEND are ignored, as libpng does")
    np.testing.assert_array_equal(read_picture(path, samples=True).data, np.tile(rgb8(), (8, 8, 1)))


@pytest.mark.parametrize("kind", ["JPEG", "GIF", "WEBP"])
def test_a_file_cut_inside_its_header_is_named_by_its_signature(tmp_path, kind):
    buffer = io.BytesIO()
    Image.fromarray(rgb8()).save(buffer, format=kind)
    (tmp_path / "x.bin").write_bytes(buffer.getvalue()[:20])
    name = "WebP" if kind == "WEBP" else kind
    with pytest.raises(ImageError, match=rf"x\.bin: (starts as a|broken or truncated) {name} "):
        read_picture(tmp_path / "x.bin")


def test_a_pipe_is_read_once_whole(tmp_path):
    """A FIFO, /dev/stdin or a shell's <(...) cannot be seeked in: read once, sniffed."""
    import threading

    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    payload = _png(rgb8())

    def feed() -> None:
        with open(fifo, "wb") as fp:
            fp.write(payload)

    writer = threading.Thread(target=feed)
    writer.start()
    picture = read_picture(fifo, samples=True)
    writer.join()
    np.testing.assert_array_equal(picture.data, rgb8())
    matrix = tmp_path / "m.txt"
    os.mkfifo(matrix)
    writer = threading.Thread(target=lambda: matrix.write_text("0 1 2\n3 4 5\n"))
    writer.start()
    picture = read_picture(matrix)
    writer.join()
    assert picture.is_matrix
    np.testing.assert_array_equal(picture.data, [[0, 1, 2], [3, 4, 5]])


class _Stdin:
    def __init__(self, raw: bytes) -> None:
        self.buffer = io.BytesIO(raw)


def test_stdin_is_sniffed(monkeypatch, tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(STORED8).save(buffer, format="PNG")
    monkeypatch.setattr(sys, "stdin", _Stdin(buffer.getvalue()))
    image = read_picture("-")
    assert image.format == "PNG" and not image.is_matrix
    np.testing.assert_array_equal(image.data[..., 0], STORED8 / np.float32(255))
    monkeypatch.setattr(sys, "stdin", _Stdin(b"0 1 2\n3 4 5\n"))
    text = read_picture("-")
    assert text.is_matrix and text.format == "TXT"
    np.testing.assert_array_equal(text.data, [[0, 1, 2], [3, 4, 5]])
    npy = io.BytesIO()
    np.save(npy, np.eye(2))
    monkeypatch.setattr(sys, "stdin", _Stdin(npy.getvalue()))
    np.testing.assert_array_equal(read_picture("-").data, np.eye(2))
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\x00\x01\xff garbage"))
    with pytest.raises(ImageError, match="neither an image Pillow reads nor a text matrix"):
        read_picture("-")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` (a decompression bomb's shape)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(png[24:29])
    png[16:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(png)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(50_000, 50_000))
    with pytest.raises(ImageError, match=r"2,500,000,000 pixels, more than the limit") as error:
        read_picture(path)
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(error.value) and "--max-pixels" in str(error.value)
    small = save(tmp_path, "s.png", Image.fromarray(STORED8))
    with pytest.raises(ImageError, match="more than the limit of 11"):
        read_picture(small, max_pixels=11)
    assert read_picture(small, max_pixels=12).data.shape == (3, 4, 1)
    tif = tmp_path / "s.tif"
    tifffile.imwrite(tif, STORED8)
    with pytest.raises(ImageError, match="limit of 11"):
        read_picture(tif, max_pixels=11)


# Writing: the map, rounding, clamping --------------------------------------------------------


def test_map_values():
    x = np.array([-0.5, 0.0, 0.25, 1.5], np.float32)
    np.testing.assert_array_equal(map_values(x, "clip", unit_range=True), [0, 0, 0.25, 1])
    np.testing.assert_array_equal(map_values(x, "abs", unit_range=True), [0.5, 0, 0.25, 1])
    np.testing.assert_array_equal(map_values(x, "abs", unit_range=False), [0.5, 0, 0.25, 1.5])
    np.testing.assert_array_equal(map_values(x, "rescale", unit_range=True), [0, 0.25, 0.375, 1])
    np.testing.assert_array_equal(map_values(x, "none", unit_range=True), x)
    np.testing.assert_array_equal(map_values(np.full(3, 7.0), "rescale", unit_range=True), 0)


def test_quantize_rounds_to_nearest_then_clamps():
    values = np.array([-1, 0, 0.49 / 255, 0.51 / 255, 1.49 / 255, 127.5001 / 255, 1, 2, np.nan])
    np.testing.assert_array_equal(quantize(values, 8), [0, 0, 0, 1, 1, 128, 255, 255, 0])
    assert quantize(values, 8).dtype == np.uint8
    np.testing.assert_array_equal(
        quantize(np.array([0.49 / 65535, 0.51 / 65535, 0.5, 1.0]), 16), [0, 1, 32768, 65535]
    )
    assert quantize(np.zeros(1), 16).dtype == np.uint16


# Writing: round trips per format and depth ---------------------------------------------------


def _image(data, alpha=None, depth=8, **extra) -> Picture:
    colors = {1: "L", 3: "RGB", 4: "CMYK"}[data.shape[2]]
    return Picture(
        data=data.astype(np.float32),
        alpha=None if alpha is None else alpha.astype(np.float32),
        integer_stored=depth != 32,
        depth=depth,
        colors=colors,
        **extra,
    )


@pytest.mark.parametrize(
    ("name", "depth", "planes", "with_alpha"),
    [
        ("out.png", 8, 1, False),
        ("out.png", 8, 1, True),
        ("out.png", 8, 3, False),
        ("out.png", 8, 3, True),
        ("out.png", 16, 1, False),
        ("out.png", 16, 1, True),
        ("out.png", 16, 3, False),
        ("out.png", 16, 3, True),
        ("out.tif", 8, 3, True),
        ("out.tif", 16, 1, False),
        ("out.tif", 16, 3, True),
        ("out.tif", 32, 3, False),
        ("out.tif", 32, 1, True),
        ("out.bmp", 8, 3, False),
        ("out.ppm", 8, 3, False),
        ("out.pgm", 16, 1, False),
    ],
)
def test_lossless_round_trips(tmp_path, name, depth, planes, with_alpha):
    rng = np.random.default_rng(depth * 10 + planes)
    maxval = {8: 255, 16: 65535, 32: 1}[depth]
    if depth == 32:
        data = rng.normal(0.5, 0.8, (5, 7, planes)).astype(np.float32)
    else:
        data = rng.integers(0, maxval + 1, (5, 7, planes)) / np.float32(maxval)
    alpha = rng.integers(0, maxval + 1, (5, 7)) / np.float32(maxval) if with_alpha else None
    picture = _image(data, alpha, depth)
    assert write(picture, tmp_path / name, map="none" if depth == 32 else None) == []
    back = read_picture(tmp_path / name)
    np.testing.assert_array_equal(back.data, picture.data)
    if with_alpha:
        np.testing.assert_array_equal(back.alpha, picture.alpha)
    else:
        assert back.alpha is None
    assert back.depth == depth


@pytest.mark.parametrize("name", ["o.sgi", "o.qoi", "o.tga", "o.ico"])
@pytest.mark.parametrize(("planes", "with_alpha"), [(1, False), (1, True), (3, False), (3, True)])
def test_other_lossless_formats_keep_every_layout(tmp_path, name, planes, with_alpha):
    """Regressions: QOI refused grey and grey + alpha ('cannot write L as QOI'), SGI dropped
    alpha with a note saying it has none (Pillow writes SGI RGBA)."""
    rng = np.random.default_rng(planes * 2 + with_alpha)
    data = rng.integers(0, 256, (5, 7, planes)) / np.float32(255)
    alpha = rng.integers(0, 256, (5, 7)) / np.float32(255) if with_alpha else None
    picture = _image(data, alpha)
    assert write(picture, tmp_path / name) == []
    back = read_picture(tmp_path / name)
    expected = np.repeat(picture.data, back.channels // planes, axis=2)  # grey as RGB in QOI
    np.testing.assert_array_equal(back.data, expected)
    if with_alpha:
        np.testing.assert_array_equal(back.alpha, picture.alpha)
    else:
        assert back.alpha is None


@pytest.mark.parametrize("name", ["out.npy", "out.txt", "out.csv"])
def test_matrix_round_trips_are_exact(tmp_path, name):
    data = np.array([[0.1, -2.5, 1e-20], [3.0, 1 / 3, 12345678.9]])
    matrix = Picture(data=data, is_matrix=True, depth=64, format="NPY", colors="matrix")
    write(matrix, tmp_path / name)
    np.testing.assert_array_equal(read_picture(tmp_path / name).data, data)


def test_text_matrices_print_shortest_numbers(tmp_path):
    matrix = Picture(data=np.array([[19.0, 25.0], [-0.0, 0.1]]), is_matrix=True, depth=64)
    write(matrix, tmp_path / "m.txt")
    write(matrix, tmp_path / "m.csv")
    assert (tmp_path / "m.txt").read_text() == "19 25\n0 0.1\n"
    assert (tmp_path / "m.csv").read_text() == "19,25\n0,0.1\n"
    image = _image(np.array([[[0.2], [1.0]]]))  # float32 values print as float32
    write(image, tmp_path / "i.txt")
    assert (tmp_path / "i.txt").read_text() == "0.2 1\n"


def test_image_to_npy_holds_unit_values_with_alpha_last(tmp_path):
    data = rgb8() / np.float32(255)
    write(_image(data, STORED8 / np.float32(255)), tmp_path / "i.npy")
    saved = np.load(tmp_path / "i.npy")
    assert saved.dtype == np.float32 and saved.shape == (3, 4, 4)
    np.testing.assert_array_equal(saved[..., :3], data)
    np.testing.assert_array_equal(saved[..., 3], STORED8 / np.float32(255))


def test_matrix_as_image_maps_unit_range_to_full_scale(tmp_path):
    matrix = Picture(data=np.array([[0, 0.5, 1, 2, -1.0]]), is_matrix=True, depth=64)
    notes = write(matrix, tmp_path / "m.png", depth=8)
    assert notes == []
    with Image.open(tmp_path / "m.png") as im:
        stored = np.asarray(im)
    np.testing.assert_array_equal(stored, [[0, 128, 255, 255, 0]])


def test_lossy_formats_round_trip_closely(tmp_path):
    smooth = np.linspace(0, 1, 16 * 16 * 3, dtype=np.float32).reshape(16, 16, 3)
    for name in ("out.jpg", "out.webp"):
        write(_image(smooth), tmp_path / name)
        back = read_picture(tmp_path / name)
        assert back.format == {"out.jpg": "JPEG", "out.webp": "WEBP"}[name]
        np.testing.assert_allclose(back.data, smooth, atol=6 / 255)


def test_jpeg_at_quality_90_and_above_is_444(tmp_path):
    picture = _image(rgb8() / np.float32(255))
    for quality, sampling in ((95, 0), (90, 0), (89, 2), (75, 2)):
        plan = plan_output(picture, "JPEG")
        (tmp_path / "q.jpg").write_bytes(encode(picture, plan, quality=quality))
        with Image.open(tmp_path / "q.jpg") as im:
            assert JpegImagePlugin.get_sampling(im) == sampling, quality


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "AVIF"])
def test_quality_is_passed_to_every_lossy_writer(fmt):
    """A regression: AVIF ignored --quality (Pillow's own default every time)."""
    from PIL import features

    if fmt == "AVIF" and not features.check("avif"):
        pytest.skip("Pillow built without AVIF")
    noise = np.random.default_rng(5).random((48, 64, 3)).astype(np.float32)
    picture = _image(noise)
    plan = plan_output(picture, fmt)
    sizes = [len(encode(picture, plan, quality=q)) for q in (20, 95)]
    assert sizes[0] < sizes[1] * 0.8, sizes


def test_compress_level_changes_size_not_pixels(tmp_path):
    data = np.random.default_rng(0).integers(0, 4, (64, 64, 1)) / np.float32(3)
    picture = _image(data)
    plan = plan_output(picture, "PNG")
    fast, small = (encode(picture, plan, compress_level=level) for level in (0, 9))
    assert len(small) < len(fast) / 2
    for payload in (fast, small):
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(payload))), data[..., 0] * 3 * 85
        )


# Writing: depth and format decisions ----------------------------------------------------------


def test_default_depth_is_the_inputs_or_the_nearest_with_a_note():
    float_rgb = _image(np.zeros((2, 2, 3)), depth=32)
    plan = plan_output(float_rgb, "PNG")
    assert plan.depth == 16 and len(plan.notes) == 1 and "16-bit" in plan.notes[0]
    assert plan_output(float_rgb, "TIFF").depth == 32
    assert plan_output(float_rgb, "JPEG").depth == 8
    assert plan_output(_image(np.zeros((2, 2, 3)), depth=16), "PNG").notes == ()
    assert plan_output(_image(np.zeros((2, 2, 3)), depth=16), "PPM").depth == 8
    assert plan_output(_image(np.zeros((2, 2, 1)), depth=16), "PPM").depth == 16
    assert plan_output(_image(np.zeros((2, 2, 3)), depth=8), "NPY").depth == 32


def test_impossible_requests_are_usage_errors():
    picture = _image(np.zeros((2, 2, 3)))
    with pytest.raises(UsageError, match=r"PNG holds 8-bit or 16-bit"):
        plan_output(picture, "PNG", depth=32)
    with pytest.raises(UsageError, match="--map none"):
        plan_output(picture, "PNG", map="none")
    with pytest.raises(UsageError, match="one plane"):
        plan_output(picture, "TXT")
    with pytest.raises(UsageError, match="--depth 8 and 16 are for image outputs"):
        plan_output(picture, "NPY", depth=8)
    with pytest.raises(UsageError, match="cannot tell the output format"):
        format_for_path("out.unknown")
    with pytest.raises(UsageError, match="unknown format"):
        format_by_name("xyz")
    assert plan_output(picture, "TIFF", depth=32, map="none").map == "none"


def test_format_names():
    assert [format_by_name(n) for n in ("png", "jpg", "JPEG", "tif", "npy", "text", "csv")] == [
        "PNG",
        "JPEG",
        "JPEG",
        "TIFF",
        "NPY",
        "TXT",
        "CSV",
    ]
    assert format_for_path("a/b.JPEG") == "JPEG" and format_for_path("x.pnm") == "PPM"


def test_pgm_holds_grey_only_and_pbm_is_refused(tmp_path):
    """Pillow's PPM writer picks P6 for colour whatever the name: a .pgm must be grey."""
    assert format_for_path("x.PGM") == "PGM" == format_by_name("pgm")
    grey = _image(STORED8[..., np.newaxis] / 255.0, np.ones((3, 4)), name="g.png")
    plan = plan_output(grey, "PGM")
    assert (plan.colors, plan.depth, plan.alpha) == ("L", 8, False)
    assert plan.notes == ("PGM has no alpha channel: the alpha channel is dropped",)
    write(grey, tmp_path / "g.pgm")
    assert (tmp_path / "g.pgm").read_bytes().startswith(b"P5\n4 3\n255\n")
    np.testing.assert_array_equal(
        read_picture(tmp_path / "g.pgm", samples=True).data[..., 0], STORED8
    )
    assert plan_output(_image(np.zeros((2, 2, 1)), depth=16), "PGM").depth == 16
    with pytest.raises(
        UsageError, match=r"a \.pgm file holds grey and c\.png is colour \(RGB\); add --gray"
    ):
        plan_output(_image(rgb8() / 255.0, name="c.png"), "PGM")
    with pytest.raises(UsageError, match="is colour"):
        plan_output(_image(np.zeros((2, 2, 4))), "PGM")  # CMYK would be written as RGB
    for refuse in (lambda: format_for_path("x.pbm"), lambda: format_by_name("pbm")):
        with pytest.raises(UsageError, match="does not write 1-bit PBM"):
            refuse()


def test_grey_with_alpha_as_gif_keeps_its_transparency_and_exact_greys(tmp_path):
    """A regression: Pillow's GIF writer dropped the alpha of grey + alpha silently."""
    alpha = np.where(STORED8 % 3 == 0, 0, 255).astype(np.float32)
    alpha[1, 1] = 7  # partly transparent: GIF's transparency is on or off
    picture = _image(STORED8[..., np.newaxis] / 255.0, alpha / 255)
    assert write(picture, tmp_path / "g.gif") == []
    back = read_picture(tmp_path / "g.gif", samples=True)
    assert back.colors == "L" and back.alpha is not None
    np.testing.assert_array_equal(back.alpha, np.where(alpha > 0, 255, 0))
    opaque = alpha > 0
    np.testing.assert_array_equal(back.data[..., 0][opaque], STORED8[opaque])  # not quantized
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)  # no grey left for transparency
    holes = np.ones((16, 16), np.float32)
    holes[0, :3] = 0
    write(_image(every[..., np.newaxis] / 255.0, holes), tmp_path / "all.gif")
    back = read_picture(tmp_path / "all.gif", samples=True)
    assert back.alpha is not None
    np.testing.assert_array_equal(back.alpha, holes * 255)


def test_colour_with_a_few_transparent_pixels_as_gif_keeps_them_transparent(tmp_path):
    """A regression: Pillow quantizes RGBA with alpha among the colours and keeps transparency
    only if a palette entry comes out fully transparent; a few transparent pixels among many
    opaque colours were written opaque."""
    rng = np.random.default_rng(42)
    stored = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    alpha = rng.integers(1, 256, (30, 40)).astype(np.uint8)
    alpha.flat[[5, 77, 300, 1111]] = 0
    picture = _image(stored / 255.0, alpha / 255.0)
    assert write(picture, tmp_path / "c.gif") == [
        "GIF holds 256 colours: the colours are quantized"
    ]
    back = read_picture(tmp_path / "c.gif", samples=True)
    assert back.alpha is not None
    np.testing.assert_array_equal(back.alpha, np.where(alpha > 0, 255, 0))
    few = np.zeros((30, 40, 3), np.uint8)  # few colours: written exactly
    few[:, 20:] = [200, 10, 30]
    write(_image(few / 255.0, alpha / 255.0), tmp_path / "few.gif")
    back = read_picture(tmp_path / "few.gif", samples=True)
    opaque = alpha > 0
    np.testing.assert_array_equal(back.data[opaque], few[opaque])


def test_ico_holds_the_picture_at_its_own_size_and_icns_is_refused(tmp_path):
    """A regression: Pillow's default ICO sizes hold shrunken copies only (40x30 read back as
    24x18), and ICNS resizes to squares: the filtered picture was silently resized."""
    stored = np.random.default_rng(40).integers(0, 256, (30, 40, 3)).astype(np.uint8)
    alpha = np.random.default_rng(41).integers(0, 256, (30, 40)).astype(np.uint8)
    picture = _image(stored / 255.0, alpha / 255.0)
    write(picture, tmp_path / "i.ico")
    back = read_picture(tmp_path / "i.ico", samples=True)
    np.testing.assert_array_equal(back.data, stored)
    np.testing.assert_array_equal(back.alpha, alpha)
    big = _image(np.zeros((200, 257, 3)))
    with pytest.raises(
        ImageError, match=r"ICO holds icons of at most 256x256 pixels and the result is 257x200"
    ):
        write(big, tmp_path / "big.ico")
    assert not (tmp_path / "big.ico").exists()
    for refuse in (lambda: format_for_path("x.icns"), lambda: format_by_name("icns")):
        with pytest.raises(UsageError, match="does not write ICNS"):
            refuse()


def test_alpha_and_cmyk_where_the_format_cannot_hold_them():
    rgba = _image(np.zeros((2, 2, 3)), np.ones((2, 2)))
    plan = plan_output(rgba, "JPEG")
    assert not plan.alpha and plan.notes == (
        "JPEG has no alpha channel: the alpha channel is dropped",
    )
    cmyk = _image(np.zeros((2, 2, 4)))
    assert plan_output(cmyk, "JPEG").colors == "CMYK"
    plan = plan_output(cmyk, "PNG")
    assert plan.colors == "RGB" and plan.notes == ("PNG holds no CMYK: writing RGB",)
    # C = 0.2, M = 0.4, Y = 0, K = 0.2 → R = 0.8·0.8, G = 0.6·0.8, B = 0.8 (as Pillow converts)
    colour = np.zeros((1, 1, 4), np.float32) + np.array([0.2, 0.4, 0, 0.2], np.float32)
    stored = np.asarray(Image.open(io.BytesIO(encode(_image(colour), plan))))
    np.testing.assert_array_equal(stored[0, 0], [163, 122, 204])


# Metadata ------------------------------------------------------------------------------------


def _exif(raw: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(raw)
    return exif


def _metadata() -> Metadata:
    exif = Image.Exif()
    exif[0x010F] = "ACME"  # Make
    exif[0x0110] = "Pinhole 1"  # Model
    return Metadata(
        icc_profile=icc_profile(b"RGB "), dpi=(300.0, 150.0), exif=exif.tobytes(), xmp=XMP
    )


XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/></rdf:RDF></x:xmpmeta>'
    b'<?xpacket end="w"?>'
)


@pytest.mark.parametrize(
    ("name", "depth"), [("m.png", 8), ("m.png", 16), ("m.jpg", 8), ("m.tif", 16), ("m.webp", 8)]
)
def test_icc_dpi_exif_are_kept(tmp_path, name, depth):
    picture = _image(rgb8() / np.float32(255), depth=depth, metadata=_metadata())
    write(picture, tmp_path / name)
    back = read_picture(tmp_path / name)
    assert back.metadata.icc_profile == icc_profile(b"RGB ")
    if name != "m.webp":  # WebP has no resolution field
        np.testing.assert_allclose(back.metadata.dpi, (300, 150), rtol=1e-3)
    exif = _exif(back.metadata.exif)
    assert (exif[0x010F], exif[0x0110]) == ("ACME", "Pinhole 1")
    assert back.metadata.xmp == XMP  # ratings, keywords: they were dropped


def test_xmp_orientation_is_removed_with_the_exif_one(tmp_path):
    """The pixels are written upright: a tiff:Orientation left in the XMP would turn them again
    in viewers that read it (as Pillow's exif_transpose, convtool removes it)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = XMP.replace(b'xmp:Rating="5"', b'xmp:Rating="5" tiff:Orientation="6"')
    path = save(tmp_path, "t.jpg", Image.fromarray(rgb8()), exif=exif, xmp=turned, quality=100)
    picture = read_picture(path)
    assert picture.data.shape == (4, 3, 3) and picture.metadata.xmp == XMP
    tags = XMP.replace(
        b'xmp:Rating="5"/>', b"><tiff:Orientation>8</tiff:Orientation></rdf:Description>"
    )
    path = save(tmp_path, "u.jpg", Image.fromarray(rgb8()), xmp=tags)
    assert b"Orientation" not in (read_picture(path).metadata.xmp or b"")


def test_metadata_survives_reading_real_files(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "ACME"
    path = save(
        tmp_path,
        "in.jpg",
        Image.fromarray(rgb8()),
        icc_profile=icc_profile(b"RGB "),
        dpi=(200, 200),
        exif=exif.tobytes(),
        quality=100,
    )
    picture = read_picture(path)
    assert picture.data.shape == (4, 3, 3)  # turned upright
    write(picture, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.size == (3, 4) and im.info["icc_profile"] == icc_profile(b"RGB ")
        assert im.info["dpi"] == pytest.approx((200, 200))
        assert im.getexif()[0x010F] == "ACME" and im.getexif().get(0x0112, 1) == 1


def test_gray_drops_a_colour_profile_and_keeps_a_grey_one(tmp_path):
    colour = save(tmp_path, "c.png", Image.fromarray(rgb8()), icc_profile=icc_profile(b"RGB "))
    write(read_picture(colour, gray=True), tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert "icc_profile" not in im.info
    grey = save(tmp_path, "g2.png", Image.fromarray(STORED8), icc_profile=icc_profile(b"GRAY"))
    write(read_picture(grey, gray=True), tmp_path / "g3.png")
    with Image.open(tmp_path / "g3.png") as im:
        assert im.info["icc_profile"] == icc_profile(b"GRAY")


# Safe writes ---------------------------------------------------------------------------------


def test_write_atomic_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_write_atomic_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    """A regression: the rename replaced the link itself with a file (latest.png -> runs/42.png
    became a plain latest.png, runs/42.png untouched); ImageMagick writes through links."""
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "42.png"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.png"
    link.symlink_to(Path("runs") / "42.png")
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "42.png")
    assert real.read_bytes() == b"new" and (real.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path / "runs")) == ["42.png"]
    dangling = tmp_path / "new.png"
    dangling.symlink_to("made.png")  # a link to a file not yet there: created
    write_atomic(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "made.png").read_bytes() == b"made"


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failure):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")

    def broken_fsync(fd: int) -> None:
        raise failure(28, "No space left on device") if failure is OSError else failure()

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ImageError if failure is OSError else KeyboardInterrupt):
        write_atomic(target, b"half-written")
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_into_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "out.png", b"x")


def test_write_output_dash_is_stdout(capfdbinary):
    write_output(b"bytes\n", "-")
    assert capfdbinary.readouterr().out == b"bytes\n"


def _files_of_every_integer_mode(tmp_path) -> list[str]:
    rgb = rgb8()
    rgba = np.concatenate([rgb, STORED8[..., None]], axis=-1)
    files = [
        save(tmp_path, "l.png", Image.fromarray(STORED8)),
        save(tmp_path, "rgb.png", Image.fromarray(rgb)),
        save(tmp_path, "rgba.png", Image.fromarray(rgba)),
        save(tmp_path, "la.png", Image.fromarray(rgba[..., 2:]).convert("LA")),
        save(tmp_path, "p.gif", Image.fromarray(rgb).convert("P")),
        save(tmp_path, "one.png", Image.fromarray(STORED8 > 100)),
        save(tmp_path, "cmyk.jpg", Image.fromarray(rgb).convert("CMYK")),
        save(tmp_path, "i16.png", Image.fromarray(STORED8.astype(np.uint16) * 257)),
        save(tmp_path, "i.pgm", Image.fromarray(STORED8.astype(np.int32) * 200, "I")),
        save(tmp_path, "f.tif", Image.fromarray(STORED8.astype(np.float32) / 7, "F")),
    ]
    rgb16 = np.ascontiguousarray(rgba.astype(np.uint16)[..., :3] * 257)
    (tmp_path / "rgb16.png").write_bytes(imagecodecs.png_encode(rgb16))
    files.append(str(tmp_path / "rgb16.png"))
    exif = Image.Exif()
    exif[0x0112] = 6
    files.append(save(tmp_path, "turned.png", Image.fromarray(rgba), exif=exif))
    return files


def test_samples_are_the_stored_integers_and_to_unit_gives_what_reading_gives(tmp_path):
    """read_picture(samples=True) keeps 8/16-bit samples; to_unit is reading's conversion."""
    for path in _files_of_every_integer_mode(tmp_path):
        as_floats = read_picture(path)
        kept = read_picture(path, samples=True)
        unit = to_unit(kept)
        assert unit.data.dtype == as_floats.data.dtype, path
        np.testing.assert_array_equal(unit.data, as_floats.data, err_msg=path)
        if as_floats.alpha is None:
            assert unit.alpha is None
        else:
            np.testing.assert_array_equal(unit.alpha, as_floats.alpha, err_msg=path)
        assert (kept.depth, kept.colors, kept.mode) == (as_floats.depth, as_floats.colors,
                                                        as_floats.mode)  # fmt: skip
        if as_floats.integer_stored and as_floats.mode != "I":
            assert kept.data.dtype == (np.uint16 if kept.depth == 16 else np.uint8), path
        else:
            assert kept.data.dtype == as_floats.data.dtype, path
    gray = read_picture(str(tmp_path / "rgb.png"), gray=True, samples=True)
    np.testing.assert_array_equal(
        gray.data, read_picture(str(tmp_path / "rgb.png"), gray=True).data
    )


def test_writing_samples_writes_what_their_values_give(tmp_path):
    """A picture of samples is written as the same picture of [0, 1] floats would be."""
    for path in _files_of_every_integer_mode(tmp_path):
        kept = read_picture(path, samples=True)
        for name, options in (("a.png", {}), ("b.tif", {"depth": 16}), ("c.npy", {}),
                              ("d.png", {"map": "rescale"}), ("e.jpg", {})):  # fmt: skip
            if name.endswith(".npy") or kept.colors != "CMYK":
                plan = plan_output(kept, format_for_path(name), **options)
                assert encode(kept, plan) == encode(to_unit(kept), plan), (path, name)


def test_png_strategy_is_tried_on_a_sample_and_never_costs_size():
    """Photograph-like noise gets zlib's Z_RLE (as small, faster); a tiled texture, whose
    repeats only long matches find, keeps the default strategy. Pixels are the same."""
    from convtool.io.png import Z_DEFAULT_STRATEGY, Z_RLE, png_strategy

    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 200, 600)[None, :, None] + np.linspace(0, 40, 500)[:, None, None]
    photo = np.clip(ramp + rng.normal(0, 6, (500, 600, 3)), 0, 255).astype(np.uint8)
    texture = np.tile(rng.integers(0, 256, (7, 5, 3)).astype(np.uint8), (72, 120, 1))
    for array, expected in ((photo, Z_RLE), (texture, Z_DEFAULT_STRATEGY)):
        picture = Picture(data=array, integer_stored=True, depth=8, colors="RGB")
        plan = plan_output(picture, "PNG")
        assert png_strategy(Image.fromarray(array), 4) == expected
        payload = encode(picture, plan)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(payload))), array)
        default = io.BytesIO()
        Image.fromarray(array).save(default, format="PNG", compress_level=4)
        assert len(payload) <= default.tell() * 1.01


def test_overlapping_reads_each_keep_their_own_pixel_limit(tmp_path):
    """Two reads at once in threads, one under a raised limit and one over the default: each
    is judged by its own limit, and Pillow's process-wide limit does not move while they run
    (it was toggled per read, and overlapping reads could leave it at None)."""
    import threading

    from PIL import Image as PILImage

    path = save(tmp_path, "big.png", Image.new("L", (400, 300), 7))
    read_picture(path)  # Pillow's check is turned off once, on the first read
    before = PILImage.MAX_IMAGE_PIXELS
    seen: set[object] = set()
    errors: list[str] = []
    done = threading.Event()
    start = threading.Barrier(3)

    def watch() -> None:
        start.wait()
        while not done.is_set():
            seen.add(PILImage.MAX_IMAGE_PIXELS)

    def raised() -> None:
        start.wait()
        for _ in range(30):
            assert read_picture(path, max_pixels=120_000, samples=True).width == 400

    def refused() -> None:
        start.wait()
        for _ in range(30):
            with pytest.raises(ImageError, match="more than the limit of 100,000") as caught:
                read_picture(path, max_pixels=100_000)
            errors.append(str(caught.value))

    threads = [threading.Thread(target=f) for f in (raised, refused)]
    watcher = threading.Thread(target=watch)
    for thread in (*threads, watcher):
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert len(errors) == 30
    assert seen == {before}
    assert before == PILImage.MAX_IMAGE_PIXELS
