"""``convtool apply`` with per-channel kernels and layers: channels in, channels out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convtool.kernels.files import save_kernel
from convtool.kernels.layer import Layer
from convtool.kernels.spec import load_any_kernel

from references import conv2d_layer

CONVTOOL = [sys.executable, "-m", "convtool"]


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONVTOOL, *map(str, args)], capture_output=True, text=True)


def ok(*args: object) -> None:
    result = run(*args)
    assert result.returncode == 0, result.stderr


def refused(*args: object) -> str:
    """The one stderr line of a refusal (non-zero exit, no traceback)."""
    result = run(*args)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convtool: error: "), result.stderr
    return lines[0]


def distinct(shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    values = np.random.default_rng(0).permutation(np.arange(1, n + 1)) / n
    return (values * np.where(np.arange(n) % 3 == 1, -1, 1)).reshape(shape)


@pytest.fixture
def planes(tmp_path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(1).standard_normal((11, 14, 3)))
    return path


@pytest.mark.parametrize("border", ["reflect", "wrap", "constant", "valid"])
@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_a_layer_file_applied_to_a_matrix_equals_the_reference(tmp_path, planes, border, suffix):
    w = distinct((2, 3, 3, 4))
    save_kernel(Layer(w, [0.5, -0.25]), tmp_path / f"k{suffix}")
    out = tmp_path / "out.npy"
    ok("apply", planes, "-k", f"@{tmp_path / f'k{suffix}'}", "--border", border, "--cval", 0.5,
       "-o", out)  # fmt: skip
    expected = conv2d_layer(np.load(planes), w, [0.5, -0.25], border, 0.5)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-12)


def test_convolve_normalize_scale_and_bias_with_a_layer(tmp_path, planes):
    w = distinct((3, 3, 2, 3)) + 0.5
    save_kernel(Layer(w, [1, 2, 3]), tmp_path / "k.txt")
    out = tmp_path / "out.npy"
    ok("apply", planes, "-k", f"@{tmp_path / 'k.txt'}", "--convolve", "--normalize",
       "--scale", 2, "--bias", 0.125, "-o", out)  # fmt: skip
    normalized = w / w.sum(axis=(1, 2, 3), keepdims=True)
    expected = conv2d_layer(np.load(planes), normalized[..., ::-1, ::-1], [1, 2, 3], "reflect")
    np.testing.assert_allclose(np.load(out), 2 * expected + 0.125, atol=1e-12)


def test_per_channel_kernels_then_a_shared_kernel(tmp_path, planes):
    """A chain: per-channel kernels (bias per channel), then a 2-D kernel on every channel."""
    w = distinct((3, 3, 3))
    save_kernel(Layer(w, [0.1, 0.2, 0.3]), tmp_path / "per.json")
    out = tmp_path / "out.npy"
    ok("apply", planes, "-k", f"@{tmp_path / 'per.json'}", "-k", "1 2; 3 -4", "-o", out)
    first = conv2d_layer(np.load(planes), w, [0.1, 0.2, 0.3], "reflect")
    shared = np.einsum("ab,oi->oiab", [[1, 2], [3, -4]], np.eye(3))
    np.testing.assert_allclose(np.load(out), conv2d_layer(first, shared, 0), atol=1e-11)


def _rgb(tmp_path) -> Path:
    rng = np.random.default_rng(2)
    path = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (10, 13, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("outputs", "mode"), [(3, "RGB"), (1, "L")], ids=["3->3 stays RGB", "3->1 is grey"]
)
def test_an_rgb_image_through_a_layer(tmp_path, outputs, mode):
    png = _rgb(tmp_path)
    w = np.abs(distinct((outputs, 3, 3, 3))) / 9
    save_kernel(Layer(w, [0.05] * outputs), tmp_path / "k.txt")
    ok("apply", png, "-k", f"@{tmp_path / 'k.txt'}", "-o", tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == mode
        got = np.asarray(im, dtype=np.float64)
    x = np.asarray(Image.open(png), dtype=np.float64) / 255
    expected = np.clip(conv2d_layer(x, w, [0.05] * outputs), 0, 1) * 255
    expected = expected[..., 0] if outputs == 1 else expected
    assert np.max(np.abs(got - np.rint(expected))) <= 1


def test_a_grey_image_through_a_1_to_3_layer_is_rgb(tmp_path):
    grey = tmp_path / "g.png"
    Image.fromarray(np.arange(120, dtype=np.uint8).reshape(10, 12) * 2).save(grey)
    save_kernel(Layer([[[[1.0]]], [[[0.5]]], [[[0.25]]]]), tmp_path / "up.npy")
    ok("apply", grey, "-k", f"@{tmp_path / 'up.npy'}", "-o", tmp_path / "out.png")
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGB"
        got = np.asarray(im, dtype=np.float64)
    x = np.arange(120).reshape(10, 12) * 2.0
    np.testing.assert_allclose(got, np.rint(np.dstack([x, x / 2, x / 4])), atol=1)


def test_other_channel_counts_go_to_npy_and_are_refused_for_images(tmp_path):
    png = _rgb(tmp_path)
    save_kernel(Layer(np.ones((2, 3, 1, 1)) / 3), tmp_path / "two.npy")
    message = refused("apply", png, "-k", f"@{tmp_path / 'two.npy'}", "-o", tmp_path / "o.png")
    assert "the kernels make 2 channels of its 3; an image holds 1 (grey), 3 (RGB)" in message
    assert "write .npy" in message
    assert not (tmp_path / "o.png").exists()
    ok("apply", png, "-k", f"@{tmp_path / 'two.npy'}", "-o", tmp_path / "o.npy")
    x = np.asarray(Image.open(png), dtype=np.float32) / 255
    np.testing.assert_allclose(
        np.load(tmp_path / "o.npy"), np.repeat(x.mean(2, keepdims=True), 2, 2), atol=1e-6
    )


def test_a_layer_that_does_not_fit_the_channels_is_refused_naming_both(tmp_path):
    grey = tmp_path / "g.png"
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(grey)
    save_kernel(Layer(np.ones((3, 3, 3, 3))), tmp_path / "mix.txt")
    message = refused("apply", grey, "-k", f"@{tmp_path / 'mix.txt'}", "-o", tmp_path / "o.png")
    assert message == (
        f"convtool: error: a 3->3 layer of 3x3 kernels takes 3 input channels; {grey} has 1: "
        "use a layer with 1 input, or an image with 3"
    )
    png = _rgb(tmp_path)
    save_kernel(Layer(np.ones((1, 3, 1, 1))), tmp_path / "grey.txt")
    grey_k, mix_k = f"@{tmp_path / 'grey.txt'}", f"@{tmp_path / 'mix.txt'}"
    message = refused("apply", png, "-k", grey_k, "-k", mix_k, "-o", tmp_path / "o.png")
    assert "takes 3 input channels; " in message and "after one kernel has 1" in message


def test_transparency_needs_alpha_keep(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(7) * 30
    Image.fromarray(rgba).save(tmp_path / "a.png")
    save_kernel(Layer(np.ones((3, 3, 1, 1)) / 3), tmp_path / "k.txt")
    message = refused(
        "apply", tmp_path / "a.png", "-k", f"@{tmp_path / 'k.txt'}", "-o", tmp_path / "o.png"
    )
    assert "add --alpha keep" in message
    ok(
        "apply",
        tmp_path / "a.png",
        "-k",
        f"@{tmp_path / 'k.txt'}",
        "--alpha",
        "keep",
        "-o",
        tmp_path / "o.png",
    )
    with Image.open(tmp_path / "o.png") as im:
        assert im.mode == "RGBA"
        out = np.asarray(im)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    assert np.all(np.abs(out[..., :3].astype(int) - 67) <= 1)


def test_an_image_filtered_in_bands_is_refused_with_a_layer(tmp_path, planes):
    save_kernel(Layer(np.ones((3, 3, 1, 1))), tmp_path / "k.txt")
    out = tmp_path / "o.npy"
    message = refused("apply", planes, "-k", f"@{tmp_path / 'k.txt'}", "--memory", "1K", "-o", out)
    assert "per-channel kernels and layers are applied to whole images only" in message
    assert not out.exists()


def test_kernels_prints_a_layer_file_and_writes_every_format(tmp_path):
    layer = Layer(distinct((2, 3, 2, 2)), [1.5, -2])
    save_kernel(layer, tmp_path / "k.json")
    printed = run("kernels", f"@{tmp_path / 'k.json'}")
    assert printed.returncode == 0 and "# channel 1, 2\n" in printed.stdout
    (tmp_path / "k.txt").write_text(printed.stdout)
    for name in ("again.txt", "again.json"):
        ok("kernels", f"@{tmp_path / 'k.txt'}", "-o", tmp_path / name)
        back = load_any_kernel(f"@{tmp_path / name}")
        np.testing.assert_array_equal(back.weights, layer.weights)
        np.testing.assert_array_equal(back.biases, [1.5, -2])
    message = refused("kernels", f"@{tmp_path / 'k.txt'}", "-o", tmp_path / "k.npy")
    assert "would lose the bias [1.5, -2.0]" in message
