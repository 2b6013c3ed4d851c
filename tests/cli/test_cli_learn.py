"""``convtool learn`` from the shell: pairs of files in, kernel file and report out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from convtool.cli import main
from convtool.kernels.spec import load_kernel

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def run(capsys, *args: object) -> tuple[int, str, str]:
    """Run convtool in-process; (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def textbook(tmp_path):
    """The textbook's 6×8 image and its 6×7 edge map with [1, −1], as text matrices."""
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    np.savetxt(tmp_path / "x.txt", x)
    np.savetxt(tmp_path / "y.txt", x[:, :-1] - x[:, 1:])
    return tmp_path / "x.txt", tmp_path / "y.txt"


@pytest.fixture
def photo(tmp_path):
    """A 120×120 colour crop of a sample photograph, as an 8-bit PNG."""
    rgb = np.asarray(Image.open(SAMPLES / "astronaut.png").convert("RGB"))[100:220, 150:270]
    path = tmp_path / "photo.png"
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)
    return path


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int64)


# --- the textbook -------------------------------------------------------------------------


def test_textbook_least_squares_prints_the_kernel_on_stdout(capsys, textbook):
    code, out, err = run(capsys, "learn", *textbook, "--size", "1x2")
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines(), ndmin=2), [[1, -1]], atol=1e-12)
    assert err.splitlines() == [
        "kernel 1x2 (correlation orientation):",
        "   1  -1",
        "bias: 0",
        "≈ edge-x (0.0 % of ‖K‖)",
        "method: lstsq, rank 2 of 2 unknowns",
        "RMSE: 0",
        "largest error: 0",
        "R²: 1",
        "pixels used: 42 (each channel counted)",
        "pixels left out as clipped: 0",
    ]


def test_textbook_gradient_descent_prints_epochs_and_ends_near_one_minus_one(capsys, textbook):
    code, out, err = run(
        capsys, "learn", *textbook, "--size", "1x2", "--method", "gd", "--lr", "0.03",
        "--epochs", "10", "--seed", "0",
    )  # fmt: skip
    assert code == 0, err
    kernel = np.loadtxt(out.splitlines(), ndmin=2)
    np.testing.assert_allclose(kernel, [[1, -1]], atol=0.03)
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(",")[0] for line in epochs] == [f"epoch {n}" for n in range(1, 11)]
    losses = [float(line.split("loss ")[1]) for line in epochs]
    assert losses[0] > 10 > 0.01 > losses[-1]
    assert "method: gd, 10 epochs, learning rate 0.03" in err


# --- 8-bit PNG targets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "extra", "expected", "bias"),
    [
        ("gaussian:sigma=1,size=5", [], None, 0.0),
        ("sharpen", [], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]], 0.0),
        ("emboss", ["--bias", "0.5"], [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], 0.5),
    ],
    ids=["gaussian", "sharpen", "emboss"],
)
def test_learns_back_what_convtool_apply_made(capsys, tmp_path, photo, spec, extra, expected, bias):
    """apply → 8-bit PNG → learn: within 1e-2; apply -k @learned reproduces it within a level."""
    target = tmp_path / "target.png"
    code, _, err = run(capsys, "apply", photo, "-k", spec, *extra, "-o", target)
    assert code == 0, err
    kernel_file = tmp_path / "k.txt"
    size = "5" if expected is None else "3"
    code, out, err = run(
        capsys, "learn", photo, target, "--size", size, *(["--bias"] if bias else []),
        "-o", kernel_file,
    )  # fmt: skip
    assert code == 0, err
    assert out == ""
    learned = load_kernel(f"@{kernel_file}")
    truth = load_kernel(spec).weights if expected is None else np.array(expected, float)
    np.testing.assert_allclose(learned.weights, truth, rtol=0, atol=1e-2)
    assert learned.bias == pytest.approx(bias, abs=1e-2)
    np.testing.assert_allclose(np.loadtxt(kernel_file, ndmin=2), learned.weights, rtol=0, atol=0)
    again = tmp_path / "again.png"
    code, _, err = run(capsys, "apply", photo, "-k", f"@{kernel_file}", "-o", again)
    assert code == 0, err
    assert np.abs(read_png(again) - read_png(target)).max() <= 1


@pytest.mark.parametrize(
    ("kernel", "bias"),
    [
        (cv2.getGaussianKernel(5, 1.2) @ cv2.getGaussianKernel(5, 1.2).T, 0.0),
        (np.array([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]]), 0.0),
        (np.array([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]]), 0.5),
    ],
    ids=["gaussian", "sharpen", "emboss"],
)
def test_learns_back_what_opencv_filter2d_made(capsys, tmp_path, photo, kernel, bias):
    bgr = cv2.imread(str(photo))
    target = tmp_path / "cv.png"
    cv2.imwrite(str(target), cv2.filter2D(bgr, -1, kernel, delta=255 * bias))
    args = ["learn", photo, target, "--size", f"{kernel.shape[0]}x{kernel.shape[1]}"]
    code, _, err = run(capsys, *args, *(["--bias"] if bias else []), "-o", tmp_path / "k.json")
    assert code == 0, err
    learned = load_kernel(f"@{tmp_path / 'k.json'}")
    np.testing.assert_allclose(learned.weights, kernel, rtol=0, atol=1e-2)
    assert learned.bias == pytest.approx(bias, abs=1e-2)
    again = tmp_path / "again.png"
    code, _, err = run(
        capsys, "apply", photo, "-k", f"@{tmp_path / 'k.json'}", "--border", "mirror", "-o", again
    )  # OpenCV's default border is BORDER_REFLECT_101, convtool's 'mirror'
    assert code == 0, err
    assert np.abs(read_png(again) - read_png(target)).max() <= 1


def test_clipped_sobel_edges_from_opencv(capsys, tmp_path):
    """Negatives clipped to 0 by OpenCV: exact by default, visibly wrong with --keep-clipped."""
    gray = cv2.imread(str(SAMPLES / "camera.png"), cv2.IMREAD_GRAYSCALE)[150:250, 150:250]
    gray = cv2.GaussianBlur(gray, (3, 3), 0.8)
    cv2.imwrite(str(tmp_path / "in.png"), gray)
    cv2.imwrite(str(tmp_path / "edges.png"), cv2.Sobel(gray, cv2.CV_8U, 1, 0, ksize=3))
    pair = (tmp_path / "in.png", tmp_path / "edges.png")
    code, out, err = run(capsys, "learn", *pair, "--size", "3")
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines()), SOBEL_X, rtol=0, atol=1e-5)
    clipped = int(next(s for s in err.splitlines() if s.startswith("pixels left out")).split()[-1])
    assert clipped > 98 * 98 * 0.3
    code, out, err = run(capsys, "learn", *pair, "--size", "3", "--keep-clipped")
    assert code == 0, err
    assert np.abs(np.loadtxt(out.splitlines()) - SOBEL_X).max() > 0.3
    assert "pixels left out as clipped: 0" in err


# --- output formats and the report --------------------------------------------------------


def test_kernel_files_in_every_format(capsys, tmp_path, textbook):
    x, y = textbook
    yb = tmp_path / "yb.txt"
    np.savetxt(yb, np.loadtxt(y) + 0.25)
    code, _, err = run(capsys, "learn", x, yb, "--size", "1x2", "--bias", "-o", tmp_path / "k.txt")
    assert code == 0, err
    text = (tmp_path / "k.txt").read_text()
    (bias_line,) = [line for line in text.splitlines() if line.startswith("# bias: ")]
    assert float(bias_line.split()[-1]) == pytest.approx(0.25, abs=1e-12)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "k.txt", ndmin=2), [[1, -1]], atol=1e-12)
    code, _, err = run(capsys, "learn", x, yb, "--size", "1x2", "--bias", "-o", tmp_path / "k.json")
    assert code == 0, err
    data = json.loads((tmp_path / "k.json").read_text())
    assert set(data) == {"kernel", "bias"} and data["bias"] == pytest.approx(0.25)
    code, _, err = run(capsys, "learn", x, yb, "--size", "1x2", "--bias", "-o", tmp_path / "k.npy")
    assert code == 2
    assert err == (
        f"convtool: error: -o {tmp_path / 'k.npy'}: a .npy file holds the weights alone and "
        "would lose the fitted bias; write .txt or .json instead (both hold the bias)\n"
    )
    assert not (tmp_path / "k.npy").exists()
    code, _, err = run(capsys, "learn", x, y, "--size", "1x2", "-o", tmp_path / "k.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), [[1, -1]], atol=1e-12)
    code, out, err = run(capsys, "learn", x, y, "--size", "1x2", "-o", "-")
    assert code == 0 and out.splitlines()[-1] == "1 -1"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_json_report_needs_a_kernel_file(capsys, tmp_path, textbook):
    code, out, err = run(capsys, "learn", *textbook, "--size", "1x2", "--json")
    assert (code, out) == (2, "")
    assert err.startswith("convtool: error: --json prints the report on standard output")
    kernel_file = tmp_path / "k.txt"
    code, out, err = run(capsys, "learn", *textbook, "--size", "1x2", "--json", "-o", kernel_file)
    assert code == 0, err
    report = json.loads(out)
    assert report["kernel"] == [[1.0, -1.0]] or np.allclose(report["kernel"], [[1, -1]])
    assert {k: report[k] for k in ("bias", "size", "method", "pixels_used", "pixels_clipped")} == {
        "bias": 0.0,
        "size": [1, 2],
        "method": "lstsq",
        "pixels_used": 42,
        "pixels_clipped": 0,
    }
    assert report["rmse"] == pytest.approx(0, abs=1e-12) and report["r2"] == pytest.approx(1)
    assert report["warnings"] == [] and report["output"] == str(kernel_file)
    assert err == ""


def test_round_trip_through_files(capsys, tmp_path):
    """apply(X, learn(X, apply(X, K))) == apply(X, K) with float matrices, to 1e-9."""
    rng = np.random.default_rng(11)
    np.save(tmp_path / "x.npy", rng.standard_normal((40, 50)))
    kernel = rng.standard_normal((4, 3))
    np.savetxt(tmp_path / "k.txt", kernel)
    for args in (["-o", tmp_path / "y.npy"], ["--convolve", "-o", tmp_path / "yc.npy"]):
        code, _, err = run(
            capsys, "apply", tmp_path / "x.npy", "-k", f"@{tmp_path / 'k.txt'}", *args
        )
        assert code == 0, err
    code, _, err = run(
        capsys, "learn", tmp_path / "x.npy", tmp_path / "y.npy", "--size", "4x3",
        "-o", tmp_path / "learned.txt",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(
        capsys, "apply", tmp_path / "x.npy", "-k", f"@{tmp_path / 'learned.txt'}",
        "-o", tmp_path / "y2.npy",
    )  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "y2.npy"), np.load(tmp_path / "y.npy"), rtol=0, atol=1e-9
    )
    code, out, err = run(
        capsys, "learn", tmp_path / "x.npy", tmp_path / "yc.npy", "--size", "4x3", "--convolve"
    )
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines()), kernel, rtol=0, atol=1e-9)
    assert "kernel 4x3 (convolution orientation):" in err


def test_gray_compares_colour_with_grey(capsys, tmp_path, photo):
    target = tmp_path / "edges.png"
    code, _, err = run(capsys, "apply", photo, "--gray", "-k", "box:3", "-o", target)
    assert code == 0, err
    code, _, err = run(capsys, "learn", photo, target, "--size", "3")
    assert code == 1
    assert err == (
        f"convtool: error: {photo} has 3 channels but {target} has 1; input and target need "
        "the same channels (--gray compares both in grey levels)\n"
    )
    code, out, err = run(capsys, "learn", photo, target, "--size", "3", "--gray")
    assert code == 0, err
    np.testing.assert_allclose(np.loadtxt(out.splitlines()), np.full((3, 3), 1 / 9), atol=1e-2)


def test_standard_input_as_one_of_the_files(tmp_path):
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    np.savetxt(tmp_path / "y.txt", x[:, :-1] - x[:, 1:])
    np.save(tmp_path / "x.npy", x)
    run_ = subprocess.run(
        [sys.executable, "-m", "convtool", "learn", "-", str(tmp_path / "y.txt"), "--size", "1x2"],
        input=(tmp_path / "x.npy").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert run_.returncode == 0, run_.stderr
    np.testing.assert_allclose(np.loadtxt(run_.stdout.decode().splitlines()), [1, -1], atol=1e-12)


# --- warnings and errors ------------------------------------------------------------------


def test_flat_image_warns_on_a_warning_line(capsys, tmp_path):
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(tmp_path / "flat.png")
    Image.fromarray(np.full((20, 30), 64, np.uint8)).save(tmp_path / "dark.png")
    code, out, err = run(
        capsys, "learn", tmp_path / "flat.png", tmp_path / "dark.png", "--size", "3"
    )
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "warning: the data determine only 1 of the 9 unknowns (3x3 weights): the input is flat"
    )
    np.testing.assert_allclose(np.loadtxt(out.splitlines()), np.full((3, 3), 0.5 / 9), rtol=1e-6)


def test_binary_target_warns_and_points_to_keep_clipped(capsys, tmp_path):
    gray = np.asarray(Image.open(SAMPLES / "camera.png").convert("L"))[200:240, 200:240]
    Image.fromarray(gray).save(tmp_path / "in.png")
    Image.fromarray(np.where(gray > 100, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    code, _, err = run(capsys, "learn", tmp_path / "in.png", tmp_path / "mask.png", "--size", "3")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("--keep-clipped" in w for w in warnings), err
    assert "RMSE: n/a" in err and "pixels used: 0 (each channel counted)" in err


def test_mismatched_shapes_are_one_error_line(capsys, tmp_path):
    np.savetxt(tmp_path / "x.txt", np.zeros((6, 8)))
    np.savetxt(tmp_path / "y.txt", np.zeros((5, 5)))
    code, out, err = run(capsys, "learn", tmp_path / "x.txt", tmp_path / "y.txt", "--size", "1x2")
    assert (code, out) == (1, "")
    assert err == (
        f"convtool: error: {tmp_path / 'y.txt'} is 5x5 but {tmp_path / 'x.txt'} is 6x8: with a "
        "1x2 kernel the target must be 6x8 (same size) or 6x7 (valid output); it is the valid "
        "output of a 2x4 kernel: if that is the filter, use --size 2x4; otherwise check that the "
        "pair is right\n"
    )


def test_too_large_size_is_an_error(capsys, textbook):
    code, _, err = run(capsys, "learn", *textbook, "--size", "7x9")
    assert code == 1
    assert err.startswith("convtool: error: the 7x9 kernel is larger than ")
    assert err.endswith(
        "(6x8); the kernel must fit inside every input: choose a --size of at most 6x8\n"
    )
    code, _, err = run(capsys, "learn", *textbook, "--size", "100x100")
    assert code == 2 and "learn solves for at most 4096" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.png"], "learn takes pairs INPUT TARGET; got 1 file (the last one has no target)"),
        (
            ["a", "b", "c"],
            "learn takes pairs INPUT TARGET; got 3 files (the last one has no target)",
        ),
        (["-", "-"], "standard input (-) can stand for only one of the files"),
        (["a", "b", "--size", "3x"], "kernel size '3x' is not HxW or N"),
        (["a", "b", "--size", "3", "--lr", "0.1"], "--lr only applies to --method gd"),
        (
            ["a", "b", "--size", "3", "--method", "gd", "--lr", "0"],
            "--lr must be a finite number > 0",
        ),
        # used to be numpy's ValueError reported as 'unexpected ...: this is a bug'
        (
            ["a", "b", "--size", "3", "--method", "gd", "--seed", "-1"],
            "--seed must be a whole number ≥ 0; got -1",
        ),
        # used to write the text kernel into edges.png
        (
            ["a", "b", "--size", "3", "-o", "edges.PNG"],
            "-o edges.PNG: learn writes a kernel, not an image; name the kernel file .txt, "
            ".json or .npy",
        ),
    ],
)
def test_usage_errors_exit_2_before_reading_anything(capsys, args, message):
    code, out, err = run(capsys, "learn", *(["--size", "3"] if "--size" not in args else []), *args)
    assert (code, out) == (2, "")
    assert err.startswith("convtool: error: ") and message in err and err.count("\n") == 1


def test_kernel_file_may_not_overwrite_an_input(capsys, textbook):
    x, y = textbook
    before = x.read_text()
    code, _, err = run(capsys, "learn", x, y, "--size", "1x2", "-o", x)
    assert code == 2
    assert err == (
        f"convtool: error: -o {x} is also one of the files to learn from; choose another name "
        "for the kernel file\n"
    )
    assert x.read_text() == before


def test_learn_help_does_not_import_numba():
    code = (
        "import sys\nfrom convtool.cli import main\n"
        "main(['learn', '--help'])\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--keep-clipped" in result.stdout


# --- bounded work (issue 16, items 7 and 9) -----------------------------------------------


def convtool(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """convtool in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "convtool", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_endless_gradient_descent_is_refused_with_an_estimate(textbook, tmp_path):
    """10¹² epochs could not end: one error line saying how long and what to do, no kernel."""
    out = tmp_path / "k.txt"
    run_ = convtool(
        "learn", *textbook, "--size", "1x2", "--method", "gd", "--epochs", 10**12, "-o", out
    )
    assert run_.returncode != 0
    assert run_.stdout == ""
    [line] = run_.stderr.splitlines()
    assert line.startswith("convtool: error: gradient descent for 1000000000000 epochs")
    assert "would take about" in line and "years" in line
    assert "fewer --epochs" in line and "--allow-long" in line
    assert not out.exists()


def test_gradient_descent_stops_when_the_loss_stops_moving_and_says_so(textbook):
    """Asked for a million epochs, it stops once converged, with a few epoch lines a decade."""
    run_ = convtool(
        "learn", *textbook, "--size", "1x2", "--method", "gd", "--epochs", 10**6, "--seed", "0",
        "--allow-long",
    )  # fmt: skip
    assert run_.returncode == 0, run_.stderr
    np.testing.assert_allclose(np.loadtxt(run_.stdout.splitlines()), [1, -1], atol=1e-6)
    epochs = [line for line in run_.stderr.splitlines() if line.startswith("epoch ")]
    numbers = [int(line.split(",")[0].split()[1]) for line in epochs]
    assert numbers[:10] == list(range(1, 11))
    assert all(str(n)[0] in "125" and set(str(n)[1:]) <= {"0"} for n in numbers[10:-1])
    assert len(epochs) < 40
    [method] = [line for line in run_.stderr.splitlines() if line.startswith("method:")]
    last = numbers[-1]
    assert last < 10**6
    assert method.startswith(f"method: gd, {last} epochs (stopped early: the loss stopped moving)")


def test_gradient_descent_json_says_it_stopped_early(textbook, tmp_path):
    run_ = convtool(
        "learn", *textbook, "--size", "1x2", "--method", "gd", "--epochs", 10**5, "--seed", "1",
        "-o", tmp_path / "k.json", "--json",
    )  # fmt: skip
    assert run_.returncode == 0, run_.stderr
    report = json.loads(run_.stdout)
    assert report["stopped_early"] is True
    assert report["epochs"] == len(report["loss_history"]) < 10**5


@pytest.mark.parametrize("method", ["lstsq", "gd"])
def test_finite_data_near_the_float_limit_get_their_own_message(tmp_path, method):
    """Values near 1e308 overflow the sums of squares: a clear line, not 'this is a bug'."""
    x = np.random.default_rng(0).random((8, 9)) * 1e308
    np.savetxt(tmp_path / "x.txt", x)
    np.savetxt(tmp_path / "y.txt", x * 0.5)
    run_ = convtool(
        "learn", tmp_path / "x.txt", tmp_path / "y.txt", "--size", "3", "--method", method
    )
    assert run_.returncode != 0
    [line] = run_.stderr.splitlines()
    assert line.startswith("convtool: error: the sums of squares and products of these data")
    assert "scale input and target down" in line
    assert "bug" not in line


def test_a_fit_beyond_ten_minutes_is_refused_before_reading_the_work(tmp_path):
    """A 64×64 fit whose target is half clipped needs hours of products: refused at once."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1500, 1500), dtype=np.uint8)
    y = np.where(rng.random((1500, 1500)) < 0.5, 0, 128).astype(np.uint8)
    Image.fromarray(x).save(tmp_path / "x.png")
    Image.fromarray(y).save(tmp_path / "y.png")
    run_ = convtool("learn", tmp_path / "x.png", tmp_path / "y.png", "--size", "64", timeout=60)
    assert run_.returncode != 0
    [line] = run_.stderr.splitlines()
    assert "the least-squares fit of a 64x64 kernel" in line
    assert "would take about" in line and "--allow-long" in line


# --- channels (issue 17) -------------------------------------------------------------------


def test_learned_colour_mixing_layer_applies_back_within_a_grey_level(tmp_path, photo):
    """learn --channels mix writes a layer file that apply reads: the target made again."""
    x = read_png(photo).astype(np.float64)
    m = np.array([[0.5, 0.3, 0.1], [0.1, 0.6, 0.2], [0.2, 0.1, 0.6]])
    y = cv2.filter2D(cv2.transform(x, m), -1, np.outer([1, 2, 1], [1, 2, 1]) / 16.0)
    target = tmp_path / "mixed.png"
    Image.fromarray(np.clip(np.rint(y), 0, 255).astype(np.uint8)).save(target)
    layer = tmp_path / "layer.txt"
    run_ = convtool("learn", photo, target, "--size", "3", "--channels", "mix", "-o", layer)
    assert run_.returncode == 0, run_.stderr
    lines = run_.stderr.splitlines()
    assert lines[0] == "a 3->3 layer of 3x3 kernels (correlation orientation):"
    assert lines[1] == "  # channel 0, 0" and "method: lstsq, rank 81 of 81 unknowns" in lines
    again = tmp_path / "again.png"
    run_ = convtool("apply", photo, "-k", f"@{layer}", "-o", again)
    assert run_.returncode == 0, run_.stderr
    assert np.abs(read_png(again) - read_png(target))[1:-1, 1:-1].max() <= 1


def test_per_channel_json_has_a_kernel_and_bias_per_channel(tmp_path, photo):
    x = read_png(photo)
    y = np.clip(x * np.array([1.0, 0.5, 0.25]) + 10, 0, 255).astype(np.uint8)
    Image.fromarray(y).save(tmp_path / "t.png")
    run_ = convtool(
        "learn", photo, tmp_path / "t.png", "--size", "1", "--channels", "per", "--bias",
        "-o", tmp_path / "k.json", "--json",
    )  # fmt: skip
    assert run_.returncode == 0, run_.stderr
    report = json.loads(run_.stdout)
    assert report["channels"] == "per"
    np.testing.assert_allclose(np.ravel(report["kernel"]), [1.0, 0.5, 0.25], atol=2e-3)
    np.testing.assert_allclose(report["bias"], [10 / 255] * 3, atol=2e-3)


def test_unknown_channels_mode_is_one_line(textbook):
    run_ = convtool("learn", *textbook, "--size", "1x2", "--channels", "all")
    assert run_.returncode != 0
    [line] = run_.stderr.splitlines()
    assert line == "convtool: error: unknown --channels 'all'; choose one of shared, per, mix"


def test_progress_shows_after_a_second_with_the_time_left(monkeypatch):
    """No line in the first second; then at most one a second, with an estimate of the rest."""
    import io
    import types

    from convtool.cli import learn as learn_cli

    clock = iter([100.0, 100.5, 101.5, 101.8, 103.0, 104.0])
    monkeypatch.setattr(learn_cli.time, "monotonic", lambda: next(clock))
    env = types.SimpleNamespace(stderr=io.StringIO())
    show = learn_cli.meter_to(env)  # started at 100.0
    for fraction in (0.1, 0.3, 0.35, 0.6, 1.0):
        show(fraction)
    assert env.stderr.getvalue().splitlines() == [
        "learn: 30% done, about 3 s left",  # 1.5 s for 30 %: 3.5 s to go, less a rounding
        "learn: 60% done, about 2 s left",
    ]


def test_a_learned_gaussian_is_named_in_the_report_and_the_json(tmp_path):
    """The closest built-in family (kernels.identify) is named, as a spec apply accepts."""
    camera = SAMPLES / "camera.png"
    blurred = tmp_path / "blurred.png"
    assert (
        convtool("apply", camera, "-k", "gaussian:sigma=1.5,size=7", "-o", blurred).returncode == 0
    )
    run_ = convtool("learn", camera, blurred, "--size", "7", "-o", tmp_path / "k.txt")
    assert run_.returncode == 0, run_.stderr
    [named] = [line for line in run_.stderr.splitlines() if line.startswith("≈ ")]
    assert named.startswith("≈ gaussian:sigma=1.5")
    run_ = convtool("learn", camera, blurred, "--size", "7", "-o", tmp_path / "k.json", "--json")
    closest = json.loads(run_.stdout)["closest"]
    assert closest["spec"].startswith("gaussian:sigma=1.5") and closest["error"] < 0.01
    assert (
        convtool("apply", camera, "-k", closest["spec"], "-o", tmp_path / "x.png").returncode == 0
    )
