"""Reading: every mode and format in as float planes (or samples), matrices, stdin, limits."""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from io_samples import STORED8, exif_of, icc_profile, rgb8, save
from PIL import Image, ImageOps

from convtool.errors import ImageError
from convtool.io.encode import encode
from convtool.io.formats import format_for_path
from convtool.io.pixels import LUMA_601, to_unit
from convtool.io.plan import plan_output
from convtool.io.read import DEFAULT_MAX_PIXELS, read_picture

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
    assert picture.metadata.exif is None or 0x0112 not in exif_of(picture.metadata.exif)


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
