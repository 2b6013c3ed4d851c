"""``convtool apply`` with the habits of other tools: --origin, --combine, their errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.ndimage as ndi

from conftest import distinct_kernel

CONVTOOL = [sys.executable, "-m", "convtool"]


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONVTOOL, "apply", *map(str, args)], capture_output=True, text=True)


def test_origin_equals_scipy_for_a_chain(tmp_path):
    x = np.random.default_rng(0).random((8, 11))
    np.save(tmp_path / "x.npy", x)
    k = distinct_kernel(3, 4)
    np.savetxt(tmp_path / "k.txt", k)
    result = run(tmp_path / "x.npy", "-k", f"@{tmp_path / 'k.txt'}", "-k", "sobel-x",
                 "--origin", "-1,1", "--border", "wrap", "-o", tmp_path / "o.npy")  # fmt: skip
    assert result.returncode == 0, result.stderr
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    want = ndi.correlate(ndi.correlate(x, k, mode="wrap", origin=(-1, 1)), sobel, mode="wrap",
                         origin=(-1, 1))  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), want, atol=1e-9)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["-k", "box:3", "--origin", "1,x"], "expected two integers DY,DX", 2),
        (["-k", "box:3", "--origin", "2,0"], "origin dy=2 is outside the 3x3 kernel", 1),
        (["-k", "box:3", "--origin", "1,0", "--border", "valid"], "crop the result", 2),
        (["-k", "box:3", "--combine", "hypot"], "hypot", 2),
        (["-k", "3x3: 1 2"], "needs 9 values; got 2", 1),
        (["-k", "Kirsch:up"], "geometry", 1),
    ],
)
def test_bad_options_give_one_error_line(tmp_path, args, message, code):
    np.save(tmp_path / "x.npy", np.ones((5, 5)))
    (tmp_path / "out.npy").write_bytes(b"keep")
    result = run(tmp_path / "x.npy", *args, "-o", tmp_path / "out.npy")
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in lines if "error" in line.lower()]) == 1, result.stderr
    assert (tmp_path / "out.npy").read_bytes() == b"keep"


def test_origin_on_the_fused_integer_path(tmp_path):
    """An 8-bit picture and one integer kernel (summed straight to 8-bit samples) with an
    origin: scipy's correlate of the same origin, rounded and clipped."""
    from PIL import Image

    x = np.random.default_rng(1).integers(0, 64, (9, 13)).astype(np.uint8)
    Image.fromarray(x).save(tmp_path / "x.png")
    k = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]])
    result = run(tmp_path / "x.png", "-k", "1 0 2; -1 1 0", "--origin", "-1,1",
                 "--border", "mirror", "-o", tmp_path / "o.png")  # fmt: skip
    assert result.returncode == 0, result.stderr
    want = np.clip(np.rint(ndi.correlate(x.astype(float), k, mode="mirror", origin=(-1, 1))), 0,
                   255)  # fmt: skip
    with Image.open(tmp_path / "o.png") as im:
        np.testing.assert_array_equal(np.asarray(im), want)


def test_origin_in_bands_equals_in_memory(tmp_path):
    import tifffile

    big = np.random.default_rng(2).random((300, 180)).astype(np.float32)
    tifffile.imwrite(tmp_path / "big.tif", big)
    options = ["-k", "box:4", "-k", "sobel-x", "--origin", "-1,1", "--border", "nearest"]
    whole = run(tmp_path / "big.tif", *options, "-o", tmp_path / "whole.tif")
    assert whole.returncode == 0, whole.stderr
    banded = run(tmp_path / "big.tif", *options, "-o", tmp_path / "bands.tif", "--memory", "200K")
    assert banded.returncode == 0 and "filtered in bands of" in banded.stderr
    got = tifffile.imread(tmp_path / "bands.tif")
    np.testing.assert_allclose(got, tifffile.imread(tmp_path / "whole.tif"), atol=1e-6)
    box = np.full((4, 4), 1 / 16)
    sobel = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    step = ndi.correlate(big.astype(float), box, mode="nearest", origin=(-1, 1))
    want = ndi.correlate(step, sobel, mode="nearest", origin=(-1, 1))
    np.testing.assert_allclose(got, want, atol=1e-5)
