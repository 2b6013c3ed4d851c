"""TIFF read as stored samples (``samples=True``, as ``convtool apply`` reads): the same
picture as the float planes, once converted; only plain samples are kept as they are."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from convtool.io.pixels import to_unit
from convtool.io.read import read_picture


def samples(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top, shape, endpoint=True).astype(dtype)


def palette() -> np.ndarray:
    return np.random.default_rng(9).integers(0, 65536, (3, 256)).astype(np.uint16)


CASES = {
    # name: (samples, tifffile options, kept as samples)
    "grey 8": (samples((19, 23), np.uint8), {"photometric": "minisblack"}, True),
    "grey 16": (samples((19, 23), np.uint16), {"photometric": "minisblack"}, True),
    "RGB 8": (samples((19, 23, 3), np.uint8), {"photometric": "rgb"}, True),
    "RGB 16": (samples((19, 23, 3), np.uint16), {"photometric": "rgb"}, True),
    "RGBA 8": (
        samples((19, 23, 4), np.uint8),
        {"photometric": "rgb", "extrasamples": ["unassalpha"]},
        True,
    ),
    "RGBA 16": (
        samples((19, 23, 4), np.uint16),
        {"photometric": "rgb", "extrasamples": ["unassalpha"]},
        True,
    ),
    "CMYK": (samples((19, 23, 4), np.uint8), {"photometric": "separated"}, True),
    "RGB + unspecified extra": (
        samples((19, 23, 4), np.uint8),
        {"photometric": "rgb", "extrasamples": ["unspecified"]},
        True,
    ),
    "min-is-white": (samples((19, 23), np.uint8), {"photometric": "miniswhite"}, False),
    "premultiplied alpha": (
        samples((19, 23, 4), np.uint8),
        {"photometric": "rgb", "extrasamples": ["assocalpha"]},
        False,
    ),
    "palette": (
        samples((19, 23), np.uint8),
        {"photometric": "palette", "colormap": palette()},
        False,
    ),
    "float": (
        np.random.default_rng(4).random((19, 23, 3)).astype(np.float32),
        {"photometric": "rgb"},
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_samples_are_the_float_planes_once_converted(tmp_path, case):
    stored, options, kept = CASES[case]
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, stored, **options)
    floats = read_picture(path)
    picture = read_picture(path, samples=True)
    assert (picture.data.dtype.kind == "u") is kept
    if kept:
        assert picture.data.dtype == stored.dtype
        colour = stored if stored.ndim == 3 else stored[..., np.newaxis]
        channels = {"RGB + unspecified extra": 3, "RGBA 8": 3, "RGBA 16": 3}.get(case)
        np.testing.assert_array_equal(picture.data, colour[..., :channels])
    unit = to_unit(picture)
    assert unit.data.dtype == floats.data.dtype == np.float32
    np.testing.assert_array_equal(unit.data, floats.data)
    if floats.alpha is None:
        assert unit.alpha is None
    else:
        assert unit.alpha is not None
        np.testing.assert_array_equal(unit.alpha, floats.alpha)
    assert (picture.mode, picture.colors, picture.depth, picture.metadata) == (
        floats.mode,
        floats.colors,
        floats.depth,
        floats.metadata,
    )


def test_an_oriented_tiff_is_turned_as_samples_too(tmp_path):
    """Orientation 6 (rotated): the samples come upright, as the float planes do."""
    stored = samples((5, 8, 3), np.uint8, seed=2)
    path = tmp_path / "turned.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, 3, 1, 6, True)])
    picture = read_picture(path, samples=True)
    assert picture.data.shape == (8, 5, 3)
    np.testing.assert_array_equal(to_unit(picture).data, read_picture(path).data)
    np.testing.assert_array_equal(picture.data, np.rot90(stored, k=-1))
