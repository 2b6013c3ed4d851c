"""ImageMagick's kernel strings: ImageMagick's own matrices, and ``apply`` equal to its
``-morphology Correlate`` / ``Convolve`` within one grey level."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convtool import load_kernel
from convtool.cli import app
from convtool.errors import KernelError
from convtool.kernels.builtins import LAPLACIAN
from convtool.kernels.origin import at_origin

from conftest import CONVERT, imagemagick

runner = CliRunner()

NAMED = [
    "Unity", "Sobel", "Sobel:45", "Sobel:90", "Sobel:135", "Sobel:180", "Sobel:270",
    "Prewitt", "Prewitt:135", "Roberts", "Roberts:90", "Compass", "Compass:45",
    "Kirsch", "Kirsch:45", "Kirsch:180", "Laplacian:0", "Laplacian:1", "Laplacian:2",
    "Laplacian:3", "Laplacian:5", "Laplacian:7", "Laplacian:15", "Laplacian:19",
    "Gaussian:0x1", "Gaussian:2x1", "Gaussian:0x0.5", "Blur:0x1", "Blur:2x1.5",
    "Blur:0x2+90", "LoG:0x1", "LoG:2x1.5", "DoG:0,1,2", "DoG:3,2,1",
]  # fmt: skip
ARRAYS = [
    "3x3: -1,0,1 -2,0,2 -1,0,1",
    "3: .1,nan,.3 .4 - -.6 .7 .8 .09",
    "5x3+0+1: .01 .02 .03 .04 .05 .06 .07 .08 .09 .10 .11 .12 .13 -.14 .15",
    "2x2: .5 -.25 .125 .0625",
    "4x2+3+1: .1 -.2 .3 .4 .5 -.6 .7 -.8",
]


def shown_kernel(spec: str) -> np.ndarray:
    """The kernel ``convert`` prints for ``spec``, its origin written in as convtool does."""
    stderr = subprocess.run(
        [CONVERT, "xc:", "-define", "morphology:showKernel=1", "-morphology", "Convolve",
         spec, "null:"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    lines = stderr.splitlines()
    m = re.search(r"of size (\d+)x(\d+)\+(\d+)\+(\d+)", lines[0])
    assert m, stderr
    rows = [[float(v) for v in line.split(":")[1].split()] for line in lines[2:]
            if re.match(r"\s*\d+:", line)]  # fmt: skip
    grid = np.nan_to_num(np.array(rows))
    x, y = int(m[3]), int(m[4])
    return at_origin(grid, (y - grid.shape[0] // 2, x - grid.shape[1] // 2))


@imagemagick
@pytest.mark.parametrize("spec", NAMED + ARRAYS)
def test_matrix_is_imagemagicks_own(spec):
    """The weights equal those ``convert`` shows (printed to 6 significant digits)."""
    ours = load_kernel(spec).weights
    theirs = shown_kernel(spec)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-6)


@pytest.fixture(scope="module")
def grey(tmp_path_factory):
    y, x = np.mgrid[0:37, 0:41]
    rng = np.random.default_rng(5)
    smooth = (np.sin(x / 5.0) * np.cos(y / 4.0) + 1) / 2 * 180 + rng.random((37, 41)) * 60
    path = tmp_path_factory.mktemp("magick") / "grey.png"
    Image.fromarray(np.round(smooth).astype(np.uint8)).save(path)
    return path


def grey_levels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")).astype(int)


@imagemagick
@pytest.mark.parametrize("spec", NAMED + ARRAYS)
@pytest.mark.parametrize("method", ["Correlate", "Convolve"])
def test_apply_equals_morphology(tmp_path, grey, spec, method):
    """``apply -k SPEC [--convolve] --border nearest`` is ``-morphology METHOD SPEC``."""
    theirs = tmp_path / "im.png"
    ours = tmp_path / "ct.png"
    subprocess.run([CONVERT, grey, "-morphology", method, spec, theirs], check=True)
    flip = ["--convolve"] if method == "Convolve" else []
    result = runner.invoke(
        app, ["apply", str(grey), "-k", spec, *flip, "--border", "nearest", "-o", str(ours)]
    )
    assert result.exit_code == 0, result.output
    a, b = grey_levels(theirs), grey_levels(ours)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1


def test_convtools_own_names_keep_their_meaning():
    """``laplacian``, ``gaussian:2``, ``log:1`` stay convtool's, in any case."""
    np.testing.assert_array_equal(load_kernel("laplacian").weights, LAPLACIAN)
    np.testing.assert_array_equal(load_kernel("Laplacian").weights, LAPLACIAN)
    assert load_kernel("Gaussian:2").weights.shape == (17, 17)  # scipy's size, σ = 2
    assert load_kernel("gaussian:sigma=1,size=3").weights.shape == (3, 3)
    assert load_kernel("log:1").weights.shape == (9, 9)
    assert load_kernel("Laplacian:0").weights[1, 1] == 8  # ImageMagick's, with an argument
    assert load_kernel("gaussian:0x1").weights.shape == (9, 9)  # ImageMagick's RxS
    np.testing.assert_array_equal(load_kernel("SOBEL").weights, load_kernel("Sobel").weights)


def test_origin_and_nan_in_a_user_array():
    """``+X+Y`` is the anchor cell; a nan cell weighs nothing."""
    k = load_kernel("3x2+2+0: 1 2 nan 4 - 6").weights
    np.testing.assert_array_equal(k, [[0, 0, 0, 0, 0], [1, 2, 0, 0, 0], [4, 0, 6, 0, 0]])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3x3: 1 2 3", "needs 9 values; got 3"),
        ("3x3+3+0: 1 2 3 4 5 6 7 8 9", "origin \\+3\\+0 is outside"),
        ("2: 1 x 3 4", "'x' is not a number"),
        ("2: nan nan - -", "every value is nan"),
        ("Sobel;Sobel:90", "own -k"),
        ("Kirsch:north", "geometry"),
        ("DoG:1,2,3,4", "R,S1,S2"),
    ],
)
def test_bad_strings_say_why(spec, message):
    with pytest.raises(KernelError, match=message):
        load_kernel(spec)


@imagemagick
def test_kirsch_rotations_with_combine_max_equal_imagemagicks_lighten(tmp_path, grey):
    """``Kirsch:0@`` composed with Lighten is the eight angles with ``--combine max``."""
    theirs = tmp_path / "im.png"
    ours = tmp_path / "ct.png"
    subprocess.run(
        [CONVERT, grey, "-define", "convolve:scale=0.0625", "-define",
         "morphology:compose=Lighten", "-morphology", "Convolve", "Kirsch:0@", theirs],
        check=True,
    )  # fmt: skip
    angles = [a for angle in range(0, 360, 45) for a in ("-k", f"Kirsch:{angle}")]
    result = runner.invoke(
        app, ["apply", str(grey), *angles, "--combine", "max", "--convolve", "--scale",
              "0.0625", "--border", "nearest", "-o", str(ours)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    a, b = grey_levels(theirs), grey_levels(ours)
    assert 20 < a.mean() < 235  # not saturated: the comparison means something
    assert np.abs(a - b).max() <= 1
