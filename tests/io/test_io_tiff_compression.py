"""TIFF output compression: a TIFF keeps its input's, ``--compress-level`` overrides it, and the
bytes do not depend on how many threads compressed the strips."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from convtool.io.encode import encode
from convtool.io.plan import plan_output
from convtool.io.read import read_picture


def _noise(shape: tuple[int, ...] = (300, 200, 3)) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)


def _tiff_in(tmp_path, compression: str | None, name: str = "in.tif"):
    path = tmp_path / name
    tifffile.imwrite(path, _noise(), photometric="rgb", compression=compression)
    return path


def _compression(data: bytes) -> int:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        return int(tif.pages.first.compression)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 1), ("zlib", 8), ("lzw", 5), ("packbits", 32773), ("jpeg", 8)],
)
def test_a_tiff_keeps_its_inputs_compression_by_default(tmp_path, given, expected):
    """Uncompressed stays uncompressed (as libvips and ImageMagick write it); deflate, LZW and
    PackBits are kept; a lossy input (JPEG-in-TIFF) is written deflate-compressed."""
    path = _tiff_in(tmp_path, given)
    picture = read_picture(path)
    assert picture.metadata.tiff_compression == _compression(path.read_bytes())
    written = encode(picture, plan_output(picture, "TIFF"))
    assert _compression(written) == expected
    back = tifffile.imread(io.BytesIO(written))
    if given != "jpeg":
        np.testing.assert_array_equal(back, _noise())


def test_compress_level_overrides_the_inputs_compression(tmp_path):
    picture = read_picture(_tiff_in(tmp_path, None))
    plan = plan_output(picture, "TIFF")
    assert _compression(encode(picture, plan, compress_level=6)) == 8
    deflated = read_picture(_tiff_in(tmp_path, "zlib", "z.tif"))
    assert _compression(encode(deflated, plan, compress_level=0)) == 1


def test_a_tiff_from_another_format_is_deflate_compressed(tmp_path):
    from PIL import Image

    Image.fromarray(_noise()).save(tmp_path / "in.png")
    picture = read_picture(tmp_path / "in.png")
    assert _compression(encode(picture, plan_output(picture, "TIFF"))) == 8


@pytest.mark.parametrize("level", [None, 1, 9])
def test_compressed_strips_are_the_same_bytes_on_any_number_of_threads(tmp_path, level):
    picture = read_picture(_tiff_in(tmp_path, "zlib"))
    picture = picture.with_planes(np.tile(picture.data, (4, 4, 1)), None)
    plan = plan_output(picture, "TIFF")
    one, two, four = (encode(picture, plan, compress_level=level, threads=t) for t in (1, 2, 4))
    assert one == two == four
    with tifffile.TiffFile(io.BytesIO(one)) as tif:
        assert len(tif.pages.first.dataoffsets) > 1  # several strips, compressed in parallel


def test_the_command_keeps_an_uncompressed_tiff_uncompressed(tmp_path):
    src = _tiff_in(tmp_path, None)
    out = tmp_path / "out.tif"
    done = subprocess.run(
        [sys.executable, "-m", "convtool", "apply", str(src), "-k", "identity", "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert _compression(out.read_bytes()) == 1
    np.testing.assert_array_equal(tifffile.imread(out), _noise())


def test_a_streamed_tiff_keeps_an_uncompressed_inputs_strips_uncompressed(tmp_path):
    src = _tiff_in(tmp_path, None)
    out = tmp_path / "out.tif"
    args = [str(src), "-k", "identity", "--memory", "100K", "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "convtool", "apply", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "bands" in done.stderr
    assert _compression(out.read_bytes()) == 1
    np.testing.assert_array_equal(tifffile.imread(out), _noise())
