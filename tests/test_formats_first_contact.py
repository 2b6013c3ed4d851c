"""First contact with the formats: defaults that lose nothing and look right.

16-bit colour PNG with a plain install, JPEG written as the input was, lossless WebP, grey
``.npy`` as (H, W).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from convtool.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def ok(*args: object) -> None:
    result = runner.invoke(app, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output


def distinct16(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """uint16 samples whose low bytes differ too: what a cut to 8 bits would lose."""
    return np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)


# 16-bit colour PNG ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_16bit_colour_png_needs_no_extra():
    """imagecodecs (Pillow cuts 16-bit colour PNG to 8 bits) comes with a plain install."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("imagecodecs") for dep in project["dependencies"])
    assert "codecs" not in project.get("optional-dependencies", {})


@pytest.mark.parametrize("planes", [3, 4])
def test_16bit_colour_png_round_trips_through_the_command_as_opencv_reads_it(tmp_path, planes):
    """A 16-bit RGB(A) PNG written by OpenCV comes back from identity sample for sample, and
    from [[0, 1]] (valid) shifted by one column."""
    stored = distinct16((5, 7, planes), seed=planes)
    bgr = [2, 1, 0, 3][:planes]  # OpenCV's order: BGR, BGRA
    assert cv2.imwrite(str(tmp_path / "in.png"), stored[..., bgr])
    ok(tmp_path / "in.png", "-k", "identity", "-o", tmp_path / "same.png")
    ok(tmp_path / "in.png", "-k", "0 1", "--border", "valid", "-o", tmp_path / "shifted.png")
    same = cv2.imread(str(tmp_path / "same.png"), cv2.IMREAD_UNCHANGED)
    shifted = cv2.imread(str(tmp_path / "shifted.png"), cv2.IMREAD_UNCHANGED)
    assert same.dtype == np.uint16 and shifted.dtype == np.uint16
    np.testing.assert_array_equal(same[..., bgr], stored)
    np.testing.assert_array_equal(shifted[..., bgr], stored[:, 1:])
