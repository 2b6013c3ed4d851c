"""Writing: map → round → clamp, round trips per format and depth, plans, metadata."""

from __future__ import annotations

import io

import numpy as np
import pytest
from io_samples import STORED8, exif_of, icc_profile, rgb8, save, write
from PIL import Image, JpegImagePlugin

from convtool.errors import ImageError, UsageError
from convtool.io.encode import encode
from convtool.io.formats import format_by_name, format_for_path
from convtool.io.picture import Metadata, Picture
from convtool.io.pixels import map_values, quantize
from convtool.io.plan import plan_output
from convtool.io.read import read_picture

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
    exif = exif_of(back.metadata.exif)
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


def test_png_strategy_is_tried_on_a_sample_and_never_costs_size():
    """Photograph-like noise gets zlib's Z_RLE (as small, faster); a tiled texture, whose
    repeats only long matches find, keeps the default strategy. Pixels are the same."""
    from convtool.io.png import PILLOW_DEFAULT_STRATEGY, Z_RLE, png_strategy

    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 200, 600)[None, :, None] + np.linspace(0, 40, 500)[:, None, None]
    photo = np.clip(ramp + rng.normal(0, 6, (500, 600, 3)), 0, 255).astype(np.uint8)
    texture = np.tile(rng.integers(0, 256, (7, 5, 3)).astype(np.uint8), (72, 120, 1))
    for array, expected in ((photo, Z_RLE), (texture, PILLOW_DEFAULT_STRATEGY)):
        picture = Picture(data=array, integer_stored=True, depth=8, colors="RGB")
        plan = plan_output(picture, "PNG")
        assert png_strategy(Image.fromarray(array), 4) == expected
        payload = encode(picture, plan)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(payload))), array)
        default = io.BytesIO()
        Image.fromarray(array).save(default, format="PNG", compress_level=4)
        assert len(payload) <= default.tell() * 1.01
