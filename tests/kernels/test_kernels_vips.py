"""libvips matrix files (``-k @k.mat``): the sum divided by SCALE, OFFSET added, as
``vips conv`` does (checked against that definition; libvips is not a test dependency)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convtool import load_kernel
from convtool.cli import app
from convtool.errors import KernelError

from references import correlate as reference

runner = CliRunner()


def test_header_scale_and_offset(tmp_path):
    mat = tmp_path / "k.mat"
    mat.write_text("3 2 4 51\n1 2 -3\n4 -5 6\n")
    k = load_kernel(f"@{mat}")
    np.testing.assert_array_equal(k.weights, np.array([[1, 2, -3], [4, -5, 6]]) / 4)
    assert k.bias == pytest.approx(51 / 255)


def test_defaults_scale_1_offset_0(tmp_path):
    mat = tmp_path / "k.mat"
    mat.write_text("2 2\n1 2\n3 4\n")
    k = load_kernel(f"@{mat}")
    np.testing.assert_array_equal(k.weights, [[1, 2], [3, 4]])
    assert k.bias == 0


def test_apply_is_the_definition_on_8bit_levels(tmp_path):
    """out = Σ K·X / SCALE + OFFSET, in 8-bit levels, rounded and clipped."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (9, 11)).astype(np.uint8)
    Image.fromarray(x).save(tmp_path / "in.png")
    (tmp_path / "k.mat").write_text("3 3 8 20\n1 2 1\n0 3 -1\n1 0 1\n")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "in.png"), "-k", f"@{tmp_path / 'k.mat'}",
              "--border", "nearest", "-o", str(tmp_path / "out.png")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    k = np.array([[1, 2, 1], [0, 3, -1], [1, 0, 1]], float)
    want = np.clip(np.rint(reference(x.astype(float), k, "nearest") / 8 + 20), 0, 255)
    got = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    assert np.abs(got - want).max() <= 1


@pytest.mark.skipif(shutil.which("vips") is None, reason="libvips's vips is not installed")
def test_equals_vips_conv(tmp_path):
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (20, 24)).astype(np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "k.mat").write_text("3 3 9 10\n1 1 1\n1 2 1\n1 1 0\n")
    subprocess.run(["vips", "conv", tmp_path / "in.png", tmp_path / "v.png",
                    tmp_path / "k.mat", "--precision", "float"], check=True)  # fmt: skip
    runner.invoke(app, ["apply", str(tmp_path / "in.png"), "-k", f"@{tmp_path / 'k.mat'}",
                        "--border", "nearest", "-o", str(tmp_path / "c.png")])  # fmt: skip
    a = np.asarray(Image.open(tmp_path / "v.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "c.png")).astype(int)
    # vips extends the image by copying edge pixels, as --border nearest does
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("3\n1 2 3\n", "WIDTH HEIGHT"),
        ("2 2 0\n1 2\n3 4\n", "SCALE is 0"),
        ("2 2\n1 2\n3\n", "header says 2x2"),
        ("2 1\n1 x\n", "'x' is not a number"),
        ("1.5 1\n1\n", "whole numbers"),
    ],
)
def test_bad_matrix_files_say_why(tmp_path, text, message):
    mat = tmp_path / "k.mat"
    mat.write_text(text)
    with pytest.raises(KernelError, match=message):
        load_kernel(f"@{mat}")
