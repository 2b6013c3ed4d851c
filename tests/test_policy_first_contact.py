"""First contact with the pixel policy: defaults that lose nothing and look right.

Float data keeps its values in float outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from convtool.cli import app
from convtool.kernels import load_kernel

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CAMERA = SAMPLES / "camera.png"


def apply(*args: object):
    result = runner.invoke(app, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("convtool: note:")]


def clipping_notes(result) -> list[str]:
    return [line for line in notes(result) if "written clipped" in line]


def camera() -> np.ndarray:
    with Image.open(CAMERA) as im:
        return np.asarray(im, dtype=np.float64) / 255


# 1. Float data keeps its values ---------------------------------------------------------------

WIDE = np.linspace(-200, 800, 12 * 16, dtype=np.float32).reshape(12, 16)


def test_float_tiff_keeps_values_beyond_0_1_in_a_float_output(tmp_path):
    """f32.tif holding −200…800 through identity: the same values, not 0…1, and no note."""
    tifffile.imwrite(tmp_path / "f32.tif", WIDE)
    result = apply(tmp_path / "f32.tif", "-k", "identity", "-o", tmp_path / "same.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "same.tif"), WIDE)
    apply(tmp_path / "f32.tif", "-k", "identity", "-o", tmp_path / "same.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "same.npy").reshape(WIDE.shape), WIDE)
    assert clipping_notes(result) == []


def test_depth_32_keeps_signed_responses_of_an_8bit_input(tmp_path):
    """An 8-bit PNG's Sobel into --depth 32: the negative half is kept (no --map none needed)."""
    apply(CAMERA, "-k", "sobel-x", "--depth", "32", "-o", tmp_path / "g.tif")
    expected = ndimage.correlate(camera(), load_kernel("sobel-x").weights, mode="reflect")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "g.tif"), expected, atol=1e-5)
