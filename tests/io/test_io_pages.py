"""Pages and frames: the ``--page`` grammar, counting pages, reading one page."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from convtool.errors import UsageError
from convtool.io.pages import page_count, page_info, parse_pages, select_pages
from convtool.io.read import read_picture


def stack(seed: int = 0, pages: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (pages, 7, 9), dtype=np.uint8)


@pytest.mark.parametrize(
    ("spec", "ranges"),
    [("0", ((0, 0),)), ("2-4", ((2, 4),)), ("0,3, 5-6", ((0, 0), (3, 3), (5, 6)))],
)
def test_page_specs_are_zero_based_and_inclusive(spec, ranges):
    """``2-4`` is ImageMagick's ``[2-4]``: the third to the fifth page, both ends included."""
    assert parse_pages(spec) == ranges


@pytest.mark.parametrize("spec", ["", "x", "1-", "-1", "3-2", "1.5", "1,,2"])
def test_bad_page_specs_are_refused(spec):
    with pytest.raises(UsageError, match="--page"):
        parse_pages(spec)


def test_selection_names_the_page_count():
    assert select_pages(None, 3, "a.tif") == (0, 1, 2)
    assert select_pages("2,0-1", 3, "a.tif") == (2, 0, 1)
    with pytest.raises(UsageError, match=r"a\.tif has 3 pages \(pages 0 to 2"):
        select_pages("3", 3, "a.tif")
    with pytest.raises(UsageError, match=r"has 1 page \(page 0,"):
        select_pages("1", 1, "a.png")


def test_a_tiff_stack_reads_page_by_page_as_tifffile_reads_it(tmp_path):
    """``read_picture(page=i)`` is tifffile's ``imread(key=i)``, and has no first-page note."""
    data = stack()
    tifffile.imwrite(tmp_path / "z.tif", data)
    assert page_count(str(tmp_path / "z.tif")) == 5
    for i in range(5):
        picture = read_picture(tmp_path / "z.tif", page=i, samples=True)
        expected = tifffile.imread(tmp_path / "z.tif", key=i)
        assert picture.data.dtype == np.uint8  # samples=True: the stored samples
        np.testing.assert_array_equal(picture.data[..., 0], expected)
        assert picture.notes == ()
    assert "only the first page" in read_picture(tmp_path / "z.tif").notes[0]


def test_an_animation_tells_its_timing_as_pillow_reads_it(tmp_path):
    frames = [Image.fromarray(page) for page in stack(1, 3)]
    frames[0].save(
        tmp_path / "a.gif",
        save_all=True,
        append_images=frames[1:],
        duration=[40, 80, 120],
        loop=2,
        disposal=[1, 2, 1],
    )
    info = page_info(str(tmp_path / "a.gif"))
    assert info is not None
    assert (info.format, info.count, info.loop) == ("GIF", 3, 2)
    assert info.durations == (40, 80, 120)
    assert info.disposals == (1, 2, 1)
    with Image.open(tmp_path / "a.gif") as im:
        for i in range(3):
            im.seek(i)
            shown = np.asarray(im.convert("L"))
            picture = read_picture(tmp_path / "a.gif", page=i, samples=True)
            assert picture.colors == "L"  # frames after the first read as RGB: grey again
            np.testing.assert_array_equal(picture.data[..., 0], shown)


def test_a_camera_mpo_and_single_pictures_count_one_page(tmp_path):
    Image.fromarray(stack()[0]).save(tmp_path / "one.png")
    assert page_count(str(tmp_path / "one.png")) == 1
    assert page_count(str(tmp_path / "missing.png")) == 1  # the reader reports it
    assert page_count("-") == 1
