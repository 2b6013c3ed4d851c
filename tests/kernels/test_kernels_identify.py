"""Naming a kernel (issue 17): every family is found back from its own kernel with noise, at any
scale and in either orientation; random kernels are not named; kernels ImageMagick made are."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from convtool.kernels.identify import THRESHOLD, Match, closest
from convtool.kernels.spec import load_kernel

FAMILIES = [
    "identity",
    "edge-x",
    "edge-y",
    "sobel-x",
    "sobel-y",
    "scharr-x",
    "prewitt-y",
    "roberts-x",
    "roberts-y",
    "laplacian",
    "laplacian8",
    "emboss",
    "box:3",
    "box:6",
    "gaussian:sigma=1.5,size=9",
    "gaussian:sigma=2,size=8",
    "gaussian:sigma=0.8,size=5",
    "log:sigma=1.2,size=9",
    "unsharp:sigma=1,amount=0.7,size=7",
    "unsharp:sigma=1.5,amount=2,size=9",
    "motion:length=7,angle=30",
    "motion:length=9,angle=0",
    "motion:length=11,angle=120",
    "directional:angle=30",
    "directional:angle=200",
]


def _parameters(spec: str) -> tuple[str, dict[str, float]]:
    name, _, args = spec.partition(":")
    values = {}
    for number, part in enumerate(filter(None, args.split(","))):
        key, equals, value = part.partition("=")
        values[key if equals else f"#{number}"] = float(value if equals else key)
    return name, values


def _assert_names(match: Match | None, spec: str, scale: float, tolerance: float) -> None:
    assert match is not None, spec
    name, expected = _parameters(spec)
    found_name, found = _parameters(match.spec)
    assert found_name == name.split(":")[0], (spec, match)
    for key, value in expected.items():
        if key == "angle":
            if name == "directional" and scale < 0:  # -directional:A is directional:A+180
                value += 180
            assert abs((found[key] - value + 180) % 360 - 180) <= 1.0, (spec, match)
        else:
            assert found[key] == pytest.approx(value, rel=tolerance, abs=0.02), (spec, match)
    assert abs(match.scale) == pytest.approx(abs(scale), rel=0.05), (spec, match)


@pytest.mark.parametrize("spec", FAMILIES)
@pytest.mark.parametrize("scale", [1.0, -0.4, 7.5])
def test_every_family_is_named_back_from_its_noisy_kernel(spec: str, scale: float) -> None:
    kernel = load_kernel(spec).weights
    rng = np.random.default_rng(len(spec))
    noisy = scale * kernel + 0.003 * abs(scale) * np.abs(kernel).max() * rng.standard_normal(
        kernel.shape
    )
    match = closest(noisy)
    _assert_names(match, spec, scale, tolerance=0.08)
    assert match is not None and match.error < 0.03
    # the spec it gives is one apply -k takes, and close to the kernel
    named = match.scale * load_kernel(match.spec).weights
    if match.convolve:
        named = named[::-1, ::-1]
    assert np.linalg.norm(named - noisy) <= 0.03 * np.linalg.norm(noisy) + 1e-12


def test_a_kernel_placed_in_a_larger_fit_is_named() -> None:
    padded = np.zeros((7, 7))
    padded[2:5, 2:5] = load_kernel("sobel-y").weights
    match = closest(padded)
    assert match is not None and match.spec == "sobel-y" and match.error < 1e-12


def test_the_flipped_form_is_said_to_be_the_convolution() -> None:
    emboss = load_kernel("emboss").weights
    match = closest(emboss[::-1, ::-1])
    assert match is not None and match.spec == "emboss" and match.convolve
    assert "--convolve" in match.describe()
    symmetric = closest(load_kernel("gaussian:sigma=1,size=5").weights)
    assert symmetric is not None and not symmetric.convolve


@pytest.mark.parametrize("seed", range(20))
def test_random_kernels_are_not_named(seed: int) -> None:
    rng = np.random.default_rng(seed)
    side = int(rng.integers(2, 10))
    assert closest(rng.standard_normal((side, side))) is None


def test_nothing_is_claimed_past_the_threshold() -> None:
    kernel = load_kernel("gaussian:sigma=1.5,size=9").weights
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(kernel.shape)
    noise *= 2 * THRESHOLD * np.linalg.norm(kernel) / np.linalg.norm(noise)
    assert closest(kernel + noise) is None
    assert closest(np.zeros((3, 3))) is None


def test_the_report_line_and_json() -> None:
    match = closest(2 * load_kernel("gaussian:sigma=1.5,size=9").weights)
    assert match is not None
    assert re.fullmatch(r"≈ gaussian:sigma=1\.5,size=9 × 2 \(0\.0 % of ‖K‖\)", match.describe())
    assert match.as_json() == {
        "spec": "gaussian:sigma=1.5,size=9",
        "scale": pytest.approx(2.0),
        "convolve": False,
        "error": pytest.approx(0.0, abs=1e-9),
    }


# --------------------------------------------------------------------------------------------
# Kernels ImageMagick made

CONVERT = shutil.which("convert") if Path("/usr/bin/convert").exists() else None
needs_magick = pytest.mark.skipif(CONVERT is None, reason="ImageMagick's convert is not installed")


SHOW_KERNEL = ("-define", "morphology:showKernel=1")


def _shown_kernel(spec: str) -> np.ndarray:
    """ImageMagick's own matrix of a -morphology kernel, as -define showKernel prints it."""
    assert CONVERT is not None
    result = subprocess.run(
        [CONVERT, "xc:", *SHOW_KERNEL, "-morphology", "Convolve", spec, "null:"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [
        [float("nan") if v == "nan" else float(v) for v in line.split(":", 1)[1].split()]
        for line in result.stderr.splitlines()
        if re.match(r"^\s*\d+:", line)
    ]
    return np.nan_to_num(np.array(rows))


def _write_pfm(path: Path, picture: np.ndarray) -> None:
    header = f"Pf\n{picture.shape[1]} {picture.shape[0]}\n-1.0\n".encode()
    path.write_bytes(header + picture[::-1].astype("<f4").tobytes())


def _read_pfm(path: Path) -> np.ndarray:
    magic, size, scale, data = path.read_bytes().split(b"\n", 3)
    width, height = map(int, size.split())
    channels = 3 if magic == b"PF" else 1
    dtype = "<f4" if float(scale) < 0 else ">f4"
    return np.frombuffer(data, dtype).reshape(height, width, channels)[::-1, :, 0].astype(float)


def _impulse_response(tmp_path: Path, *operation: str) -> np.ndarray:
    """The kernel an ImageMagick operation applies: its response to an impulse on grey."""
    assert CONVERT is not None
    picture = np.full((31, 31), 0.5, np.float32)
    picture[15, 15] = 0.75
    _write_pfm(tmp_path / "impulse.pfm", picture)
    subprocess.run([CONVERT, "impulse.pfm", *operation, "out.pfm"], cwd=tmp_path, check=True)
    response = (_read_pfm(tmp_path / "out.pfm") - 0.5) / 0.25
    reach = max(1, int(np.abs(np.argwhere(np.abs(response) > 1e-4) - 15).max()))
    return response[15 - reach : 16 + reach, 15 - reach : 16 + reach]


@needs_magick
@pytest.mark.parametrize(
    ("operation", "family"),
    [
        (("-blur", "0x1.5"), "gaussian:sigma=1.5"),
        (("-gaussian-blur", "0x2"), "gaussian:sigma=2"),
        (("-sharpen", "0x1"), "unsharp:sigma=1"),
        (("-unsharp", "0x1+0.8+0"), "unsharp:sigma=1,amount=0.8"),
    ],
)
def test_kernels_of_imagemagick_operations_are_named(
    tmp_path: Path, operation: tuple[str, ...], family: str
) -> None:
    match = closest(_impulse_response(tmp_path, *operation))
    _assert_names(match, family, 1.0, tolerance=0.05)


@needs_magick
@pytest.mark.parametrize(
    ("spec", "family", "scale"),
    [
        ("Gaussian:0x1.5", "gaussian:sigma=1.5", 1.0),
        ("Sobel", "sobel-x", -1.0),
        ("Square:1", "box:3", 9.0),
        ("Laplacian:0", "laplacian8", -1.0),
        ("Laplacian:1", "laplacian", -1.0),
    ],
)
def test_imagemagick_morphology_kernels_are_named(spec: str, family: str, scale: float) -> None:
    match = closest(_shown_kernel(spec))
    _assert_names(match, family, scale, tolerance=0.05)
