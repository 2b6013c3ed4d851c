"""Band-wise correlation equals whole-image correlation: every border, every awkward band."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import tifffile

import convtool
from convtool.io.matrix import NpyReader, NpyWriter
from convtool.io.tiff import TiffReader, write_tiff
from convtool.stream.engine import (
    correlate_bands,
    correlate_streamed,
    correlation_stage,
    extend_index,
    extrema,
    open_reader,
)
from convtool.stream.sizes import plan_band_rows

import references
from conftest import assert_close, distinct_kernel, random_image

MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]
ALL_MODES = [*MODES, "valid"]


def streamed(x, k, **options) -> np.ndarray:
    """The bands of correlate_bands, checked to come in order, joined."""
    parts = []
    expected = 0
    for start, rows in correlate_bands(x, k, **options):
        assert start == expected
        expected += rows.shape[0]
        parts.append(rows)
    return np.concatenate(parts)


# Band heights at every awkward place for an 11-row image and kernels up to 6 rows: one row,
# thinner than the kernel, about the kernel's height, a band boundary next to the bottom border
# (10 leaves a last band of 1 row), and the whole image in one band.
BAND_ROWS = [1, 2, 5, 10, 11]


@pytest.mark.parametrize("band_rows", BAND_ROWS)
@pytest.mark.parametrize("ksize", [(1, 1), (2, 1), (1, 3), (3, 3), (4, 5), (6, 2)])
@pytest.mark.parametrize("mode", ALL_MODES)
def test_bands_equal_whole_image(mode, ksize, band_rows):
    """Any band height gives the whole-image result, borders included, gray and colour."""
    for shape in [(11, 9), (11, 9, 3)]:
        x = random_image(shape, np.float32, seed=band_rows)
        k = distinct_kernel(*ksize, seed=1)
        got = streamed(x, k, border=mode, cval=0.75, band_rows=band_rows)
        whole = convtool.correlate(x, k, border=mode, cval=0.75)
        assert got.dtype == whole.dtype == np.float32
        assert_close(got, whole, k, x)
        assert_close(got, references.scipy_correlate(x, k, mode, 0.75), k, x)


@pytest.mark.parametrize("band_rows", [1, 3])
@pytest.mark.parametrize("ksize", [(7, 7), (9, 4), (2, 12), (15, 15)])
@pytest.mark.parametrize("mode", MODES)
def test_kernels_larger_than_the_image(mode, ksize, band_rows):
    """A kernel taller and wider than a 4×5 image: the border mode is applied many times over."""
    x = random_image((4, 5, 2), np.float64, seed=2)
    k = distinct_kernel(*ksize, seed=3)
    got = streamed(x, k, border=mode, cval=-1.5, band_rows=band_rows)
    assert got.dtype == np.float64
    assert_close(got, references.scipy_correlate(x, k, mode, -1.5), k, x)
    assert_close(got, references.correlate(x, k, mode, -1.5), k, x)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_single_pixel_and_single_row_images(mode):
    """1×1 and 1×W images, one-row bands: every row of the halo is made by the border mode."""
    for shape, ksize in [((1, 1), (1, 1)), ((1, 7), (1, 3)), ((1, 1), (3, 2)), ((1, 6), (4, 3))]:
        if mode == "valid" and (ksize[0] > shape[0] or ksize[1] > shape[1]):
            continue
        x = random_image(shape, np.float64, seed=4)
        k = distinct_kernel(*ksize, seed=5)
        got = streamed(x, k, border=mode, cval=2.0, band_rows=1)
        assert_close(got, references.correlate(x, k, mode, 2.0), k, x)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("mode", ALL_MODES)
def test_integer_images(mode, dtype):
    """Stored integers are taken as they are; a cval the dtype cannot hold is not rounded."""
    x = random_image((17, 13, 3), dtype, seed=6)
    k = distinct_kernel(3, 4, seed=7)
    got = streamed(x, k, border=mode, cval=0.5, band_rows=4)
    assert got.dtype == np.float32
    assert_close(got, convtool.correlate(x, k, border=mode, cval=0.5), k, x)
    assert_close(got, references.scipy_correlate(x, k, mode, 0.5), k, x)


@pytest.mark.parametrize("band_rows", [1, 4, 23])
@pytest.mark.parametrize("mode", ALL_MODES)
def test_chain_equals_stage_by_stage_whole_image(mode, band_rows):
    """A chain K1, K2, K3 is correlate(correlate(correlate(X, K1), K2), K3), edges included."""
    x = random_image((23, 19, 2), np.float64, seed=8)
    chain = [distinct_kernel(3, 4, seed=9), distinct_kernel(5, 2, seed=10), np.ones((2, 3)) / 6]
    expected = x
    for k in chain:
        expected = references.scipy_correlate(expected, k, mode, 0.25)
    got = streamed(x, chain, border=mode, cval=0.25, band_rows=band_rows)
    scale = np.prod([np.abs(k).sum() for k in chain]) * np.ones((1, 1))
    assert_close(got, expected, scale, x)


def test_chain_wrap_reads_the_bottom_rows_for_the_top_band():
    """With wrap, the first band of a chain needs rows at the bottom of the intermediate image."""
    x = np.zeros((12, 3))
    x[-1] = 1.0  # only the last row is lit
    chain = [np.array([[1.0], [0.0], [0.0]]), np.array([[1.0], [0.0], [0.0]])]
    got = streamed(x, chain, border="wrap", band_rows=1)
    # each kernel reads the row above: the lit row moves down twice, wrapping to row 1
    expected = np.zeros((12, 3))
    expected[1] = 1.0
    np.testing.assert_array_equal(got, expected)


def test_kernel_bias_is_added_after_each_kernel():
    """with_bias adds a Kernel's own bias right after it, so the next kernel filters it too."""
    x = random_image((9, 8), np.float64, seed=11)
    k1 = convtool.Kernel(np.full((2, 2), 0.25), name="k1", bias=1.0)
    k2 = convtool.Kernel(np.array([[1.0, -2.0, 3.0]]), name="k2", bias=-0.5)
    expected = convtool.correlate(convtool.correlate(x, k1.weights) + 1.0, k2.weights) - 0.5
    got = streamed(x, [k1, k2], band_rows=2, with_bias=True)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    no_bias = streamed(x, [k1, k2], band_rows=2)
    np.testing.assert_allclose(
        no_bias, convtool.correlate(convtool.correlate(x, k1.weights), k2.weights), atol=1e-12
    )


def test_prepare_converts_rows_as_they_are_read():
    """A pixel-wise prepare (here: 8-bit to [0, 1]) equals preparing the whole image first."""
    x = random_image((15, 10, 3), np.uint8, seed=12)

    def unit(rows: np.ndarray) -> np.ndarray:
        return rows.astype(np.float32) / np.float32(255)

    got = streamed(x, "gaussian:1", border="constant", cval=1.0, band_rows=4, prepare=unit)
    whole = convtool.correlate(unit(x), "gaussian:1", border="constant", cval=1.0)
    np.testing.assert_allclose(got, whole, atol=1e-6)


def test_spec_strings_and_separable_kernels():
    """Spec strings work as kernels; a rank-1 kernel (separable path) gives the same bands."""
    x = random_image((40, 31), np.float32, seed=13)
    for spec in ["gaussian:sigma=2,size=9", "sobel-x", "laplacian"]:
        got = streamed(x, spec, border="mirror", band_rows=7)
        k = convtool.parse_kernel(spec)
        assert_close(got, convtool.correlate(x, spec, border="mirror"), k, x)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_correlate_streamed_into_open_memmap(tmp_path, mode):
    """Bands written into a memory-mapped .npy give the whole result."""
    x = random_image((30, 20, 3), np.float32, seed=14)
    k = distinct_kernel(5, 3, seed=15)
    whole = convtool.correlate(x, k, border=mode, cval=0.1)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.float32, whole.shape)
    correlate_streamed(x, k, out, border=mode, cval=0.1, band_rows=6)
    out.flush()
    del out
    assert_close(np.load(tmp_path / "out.npy"), whole, k, x)


def test_npy_file_in_npy_file_out(tmp_path):
    """NpyReader in, NpyWriter out: rows go through plain file reads and writes."""
    x = random_image((50, 21, 3), np.uint16, seed=16)
    np.save(tmp_path / "in.npy", x)
    k = distinct_kernel(4, 4, seed=17)
    whole = convtool.correlate(x, k, border="nearest")
    with NpyWriter(tmp_path / "out.npy", whole.shape, np.float32) as sink:
        correlate_streamed(tmp_path / "in.npy", k, sink, border="nearest", band_rows=9)
    assert_close(np.load(tmp_path / "out.npy"), whole, k, x)


def test_npy_reader_reads_exact_rows(tmp_path):
    """Any row range, including big-endian data (converted to native order)."""
    x = random_image((13, 7, 2), np.float64, seed=18).astype(">f8")
    np.save(tmp_path / "be.npy", x)
    reader = NpyReader(tmp_path / "be.npy")
    assert reader.shape == (13, 7, 2)
    for start, stop in [(0, 1), (3, 9), (12, 13), (0, 13)]:
        rows = reader.read_rows(start, stop)
        assert rows.dtype == np.float64 and rows.dtype.isnative
        np.testing.assert_array_equal(rows, x[start:stop])


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((13, 7, 3), ">f4"), ((13, 7), "<i2"), ((1, 9), "u1"), ((6, 1, 2), "f8"), ((300, 5), "f4")],
)
def test_npy_reader_reads_fortran_order_rows(tmp_path, shape, dtype, monkeypatch):
    """Fortran order (a transposed array saved as it is): any row range, native byte order.

    A buffer of 64 bytes makes the (300, 5) case gather its columns one at a time.
    """
    monkeypatch.setattr(convtool.io.matrix, "FORTRAN_BUFFER", 64)
    x = random_image(shape, np.float64, seed=27) * 100
    x = np.asfortranarray(x.astype(dtype))
    np.save(tmp_path / "f.npy", x)
    reader = NpyReader(tmp_path / "f.npy")
    assert reader.shape == shape and reader.dtype == np.dtype(dtype).newbyteorder("=")
    h = shape[0]
    for start, stop in {(0, 1), (h // 3, h - h // 4), (h - 1, h), (0, h)}:
        rows = reader.read_rows(start, stop)
        assert rows.dtype.isnative and rows.flags.c_contiguous
        np.testing.assert_array_equal(rows, x[start:stop])


def test_fortran_order_npy_streams_as_c_order(tmp_path):
    """A Fortran-order .npy in bands equals the in-memory correlation (scipy as oracle)."""
    x = random_image((41, 23), np.float64, seed=28)
    np.save(tmp_path / "f.npy", x.T.copy().T)  # C-contiguous transposed: stored in F order
    assert NpyReader(tmp_path / "f.npy").fortran
    k = distinct_kernel(4, 3, seed=29)
    got = streamed(tmp_path / "f.npy", k, border="mirror", band_rows=6)
    assert_close(got, references.scipy_correlate(x, k, "mirror", 0.0), k, x)


def test_npy_reader_refuses_non_images(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(convtool.ImageError, match="cannot be streamed"):
        NpyReader(tmp_path / "v.npy")
    np.save(tmp_path / "c.npy", np.zeros((4, 5), dtype=np.complex64))
    with pytest.raises(convtool.ImageError, match="cannot be streamed"):
        NpyReader(tmp_path / "c.npy")


def test_npy_reader_truncated_fortran_file(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((40, 30))))
    data = (tmp_path / "f.npy").read_bytes()
    (tmp_path / "f.npy").write_bytes(data[: len(data) - 100])
    with pytest.raises(convtool.ImageError, match=r"f\.npy"):
        NpyReader(tmp_path / "f.npy").read_rows(0, 40)


TIFF_LAYOUTS = {
    "contiguous": {},
    "strips-zlib": {"rowsperstrip": 5, "compression": "zlib"},
    "strips-raw": {"rowsperstrip": 4},
    "tiles-zlib": {"tile": (16, 32), "compression": "zlib"},
    "tiles-lzw-predictor": {"tile": (16, 16), "compression": "lzw", "predictor": True},
    "planar-strips": {"planarconfig": "separate", "rowsperstrip": 7, "compression": "zlib"},
    "planar-contiguous": {"planarconfig": "separate"},
    "big-endian": {"byteorder": ">", "rowsperstrip": 6},
}


@pytest.mark.parametrize("layout", list(TIFF_LAYOUTS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_reader_reads_exact_rows(tmp_path, layout, dtype):
    """Strips, tiles, planar, compressed, big-endian: any row range equals tifffile's array."""
    x = random_image((37, 45, 3), dtype, seed=19)
    options = dict(TIFF_LAYOUTS[layout])
    path = tmp_path / "x.tif"
    byteorder = options.pop("byteorder", "<")
    data = np.moveaxis(x, -1, 0) if options.get("planarconfig") == "separate" else x
    tifffile.imwrite(path, data, photometric="rgb", byteorder=byteorder, **options)
    with TiffReader(path) as reader:
        assert reader.shape == (37, 45, 3)
        assert reader.dtype == np.dtype(dtype)
        for start, stop in [(0, 1), (0, 37), (3, 4), (4, 21), (15, 17), (31, 37), (36, 37)]:
            np.testing.assert_array_equal(reader.read_rows(start, stop), x[start:stop])


def test_tiff_reader_gray(tmp_path):
    x = random_image((20, 9), np.uint16, seed=20)
    tifffile.imwrite(tmp_path / "g.tif", x, tile=(16, 16), compression="zlib")
    with TiffReader(tmp_path / "g.tif") as reader:
        assert reader.shape == (20, 9)
        np.testing.assert_array_equal(reader.read_rows(2, 19), x[2:19])


@pytest.mark.parametrize("layout", ["contiguous", "strips-zlib", "tiles-zlib", "planar-strips"])
@pytest.mark.parametrize("mode", ALL_MODES)
def test_tiff_in_bands_equals_whole_image(tmp_path, layout, mode):
    """A TIFF filtered band by band equals the whole image filtered in memory, and scipy."""
    x = random_image((41, 35, 3), np.uint8, seed=21)
    options = dict(TIFF_LAYOUTS[layout])
    data = np.moveaxis(x, -1, 0) if options.get("planarconfig") == "separate" else x
    tifffile.imwrite(tmp_path / "x.tif", data, photometric="rgb", **options)
    k = distinct_kernel(5, 4, seed=22)
    with TiffReader(tmp_path / "x.tif") as reader:
        got = streamed(reader, k, border=mode, cval=128.5, band_rows=6)
    assert_close(got, convtool.correlate(x, k, border=mode, cval=128.5), k, x)
    assert_close(got, references.scipy_correlate(x, k, mode, 128.5), k, x)


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("shape", [(70, 50, 3), (33, 300)])
def test_write_tiff_from_bands(tmp_path, compression, shape):
    """Bands of any heights become strips (uncompressed) or tiles (compressed), in order."""
    x = random_image(shape, np.uint16, seed=23)
    bands = [(0, x[:1]), (1, x[1:30]), (30, x[30:31]), (31, x[31:])]
    photometric = "rgb" if len(shape) == 3 else "minisblack"
    path = tmp_path / "out.tif"
    write_tiff(
        path, iter(bands), shape, np.uint16, compression=compression, tile=32,
        rows_per_strip=8, photometric=photometric,
    )  # fmt: skip
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        assert page.is_tiled == bool(compression)
        assert not tif.is_bigtiff
        np.testing.assert_array_equal(page.asarray(), x)


def test_write_tiff_bigtiff_and_band_order(tmp_path):
    """bigtiff=True writes BigTIFF; bands out of order or short are refused."""
    x = random_image((10, 6), np.uint8, seed=24)
    write_tiff(tmp_path / "b.tif", iter([(0, x)]), x.shape, np.uint8, bigtiff=True)
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        assert tif.is_bigtiff
        np.testing.assert_array_equal(tif.asarray(), x)
    with pytest.raises(ValueError, match="out of order"):
        write_tiff(tmp_path / "c.tif", iter([(0, x[:3]), (4, x[4:])]), x.shape, np.uint8)
    with pytest.raises(ValueError, match="cover 3 rows"):
        write_tiff(tmp_path / "d.tif", iter([(0, x[:3])]), x.shape, np.uint8)


def test_tiff_to_tiff_round_trip(tmp_path):
    """A compressed tiled TIFF filtered in bands into a compressed tiled TIFF."""
    x = random_image((90, 70, 3), np.uint8, seed=25)
    tifffile.imwrite(tmp_path / "in.tif", x, photometric="rgb", tile=(32, 32), compression="zlib")
    k = convtool.parse_kernel("box:5")
    whole = convtool.correlate(x, k, border="reflect")
    with TiffReader(tmp_path / "in.tif") as reader:
        bands = (
            (s, rows.astype(np.float32)) for s, rows in correlate_bands(reader, k, memory=2**20)
        )
        write_tiff(
            tmp_path / "out.tif", bands, x.shape, np.float32, compression="zlib", tile=32,
            photometric="rgb",
        )  # fmt: skip
    assert_close(tifffile.imread(tmp_path / "out.tif"), whole, k, x)


@pytest.mark.parametrize("order", ["C", "F"])
def test_peak_memory_is_bounded_by_the_budget(tmp_path, order):
    """Streaming a .npy far larger than the budget allocates no more than the budget.

    tracemalloc counts NumPy's buffers: source rows, extended bands, results, temporaries
    (and for Fortran order the reader's buffer of gathered columns).
    """
    x = random_image((800, 600, 3), np.float32, seed=26)  # 5.8 MB in, 5.8 MB out
    np.save(tmp_path / "in.npy", np.asarray(x, order=order))
    k = convtool.parse_kernel("gaussian:sigma=2,size=15")
    budget = 1_500_000
    rows = plan_band_rows(x.shape, [correlation_stage(k)], "reflect", budget)
    assert 2 <= rows < 800 // 4
    with NpyWriter(tmp_path / "out.npy", x.shape, np.float32) as sink:
        tracemalloc.start()
        try:
            correlate_streamed(tmp_path / "in.npy", k, sink, memory=budget)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < budget, f"peak {peak} bytes over the budget of {budget}"
    assert_close(np.load(tmp_path / "out.npy"), convtool.correlate(x, k), k, x)


def test_valid_kernel_larger_than_the_image_is_refused():
    with pytest.raises(convtool.KernelError, match="larger than the 4x5 image"):
        streamed(np.zeros((4, 5)), np.ones((5, 2)), border="valid", band_rows=2)
    with pytest.raises(convtool.KernelError, match="larger than the 2x4 image"):
        streamed(np.zeros((4, 5)), [np.ones((3, 2)), np.ones((3, 2))], border="valid", band_rows=2)


def test_bad_arguments():
    with pytest.raises(convtool.UsageError, match="unknown border 'same'"):
        streamed(np.zeros((4, 4)), "box:3", border="same", band_rows=1)
    with pytest.raises(convtool.UsageError, match="band_rows must be at least 1"):
        streamed(np.zeros((4, 4)), "box:3", band_rows=0)
    with pytest.raises(convtool.UsageError, match="cval"):
        streamed(np.zeros((4, 4)), "box:3", cval=math.inf, band_rows=1)


def test_only_npy_and_tiff_files_stream(tmp_path):
    """A PNG cannot be read by rows: the error says to convert it to TIFF."""
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    with pytest.raises(convtool.ImageError, match="convert the image to TIFF"):
        open_reader(tmp_path / "x.png")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_extend_index_matches_the_plain_loop_reference(mode):
    """The vectorised index mapping is references.extend_index, far beyond the image too."""
    for n in [1, 2, 3, 5]:
        positions = np.arange(-13, n + 13) if mode != "valid" else np.arange(n)
        got = extend_index(positions, n, mode)
        for p, g in zip(positions, got, strict=True):
            want = p if mode == "valid" else references.extend_index(int(p), n, mode)
            assert g == (-1 if want is None else want), (mode, n, p)


def test_extrema_for_rescale():
    """The first pass of --map rescale: global min and max over all bands, NaN ignored."""
    bands = [(0, np.array([[1.0, 5.0]])), (1, np.array([[np.nan, -2.0]])), (2, np.zeros((0, 2)))]
    assert extrema(bands) == (-2.0, 5.0)
    assert all(math.isnan(v) for v in extrema([(0, np.full((2, 2), np.nan))]))
    x = random_image((31, 17, 3), np.float32, seed=27)
    y = convtool.correlate(x, "laplacian")
    lo, hi = extrema(correlate_bands(x, "laplacian", band_rows=5))
    np.testing.assert_allclose([lo, hi], [y.min(), y.max()], rtol=1e-6)
