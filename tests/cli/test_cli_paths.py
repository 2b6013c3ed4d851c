"""A whole command writes the same bytes whether its work ran in numba or in the numpy twins.

A command whose work fits in ``compiled.TWIN_BUDGET`` never loads numba (the twins are faster
than loading it); with ``--threads`` it loads numba and runs the compiled loops. Both runs are
real processes; their outputs are compared byte for byte, for JPEG, TIFF and PNG (large
enough for convtool's own PNG writer, whose row filter is compiled code too).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from convtool import compiled
from convtool.io.png import PARALLEL_SAMPLES

HEIGHT, WIDTH = 1800, 1600
"""An RGB picture of at least ``PARALLEL_SAMPLES`` samples: written by convtool's PNG writer."""

RUN = (
    "import sys\n"
    "from convtool.cli import main\n"
    "code = main(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(int('numba' in sys.modules)))\n"
    "sys.exit(code)\n"
)
"""``convtool ARGS`` in a process that then writes whether it loaded numba into a file."""

TIMEOUT = 600  # a cold numba cache compiles the loops of the --threads run


def photo(seed: int = 0) -> np.ndarray:
    """Gradients, an edge and noise: Sobel responses of both signs, every PNG filter used."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([x / WIDTH, y / HEIGHT, ((x + y) % 300) / 300], axis=-1) * 200
    base[:, WIDTH // 2 :] += 40
    noisy = base + rng.normal(0, 6, base.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("paths")
    pixels = photo()
    assert pixels.size >= PARALLEL_SAMPLES
    paths = {"png": folder / "in.png", "jpg": folder / "in.jpg", "tif": folder / "in.tif"}
    Image.fromarray(pixels).save(paths["png"])
    Image.fromarray(pixels).save(paths["jpg"], quality=90)
    tifffile.imwrite(paths["tif"], pixels, photometric="rgb")
    return paths


def convtool(tmp_path: Path, *args: str) -> bool:
    """Run ``convtool ARGS``; whether it loaded numba."""
    flag = tmp_path / "numba-loaded"
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(flag), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return flag.read_text() == "1"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jpg", "tif", "png"])
@pytest.mark.parametrize(
    "kernel",
    [
        ["-k", "sobel-x"],  # integer kernel, 8-bit out: the fused integer pass
        ["-k", "gaussian:1"],  # separable float passes, then the pixel policy
        ["-k", "-1 0 1; -2 0 3; -1 0 1", "--map", "abs", "--border", "wrap"],
    ],
    ids=["sobel-x", "gaussian", "asymmetric-abs-wrap"],
)
def test_the_bytes_do_not_depend_on_numba(tmp_path, inputs, fmt, kernel):
    """The same command without and with numba: identical files."""
    src = str(inputs[fmt])
    twins, jitted = tmp_path / f"twins.{fmt}", tmp_path / f"jitted.{fmt}"
    loaded = convtool(tmp_path, "apply", src, *kernel, "-o", str(twins))
    assert not loaded, "work within the twin budget loaded numba"
    loaded = convtool(tmp_path, "apply", src, *kernel, "--threads", "1", "-o", str(jitted))
    assert loaded, "--threads did not run the compiled loops"
    assert twins.read_bytes() == jitted.read_bytes()


@pytest.mark.slow
def test_work_past_the_budget_loads_numba(tmp_path, inputs):
    """A kernel whose work is more than the twins' budget: numba is loaded, as before."""
    taps = int(compiled.TWIN_BUDGET / (HEIGHT * WIDTH * 3)) + 1
    side = int(np.ceil(taps**0.5))
    kernel = np.random.default_rng(5).integers(1, 9, (side, side + 1))
    spec = "; ".join(" ".join(map(str, row)) for row in kernel)
    out = tmp_path / "out.png"
    assert convtool(
        tmp_path, "apply", str(inputs["jpg"]), "-k", spec, "--normalize", "-o", str(out)
    )


BUDGET = """
import sys
from convtool import compiled
def twin(*args):
    pass
assert compiled.choose("png_filter", (), twin, work=1.0) is not twin  # not a short run
assert "numba" in sys.modules
"""
"""Outside a short run (the Python API), the twins never stand in for numba."""

SHORT = """
import sys
from convtool import compiled
def twin(*args):
    pass
with compiled.configured(policy="now", short=True):
    assert compiled.choose("png_filter", (), twin, work=1.0, now=True) is not twin
    print(int("numba" in sys.modules))
"""
"""``now`` (``--threads``) loads numba whatever the work."""

SPENT = """
import sys
from convtool import compiled
def twin(*args):
    pass
half = compiled.TWIN_BUDGET / 2
with compiled.configured(policy="now", short=True):
    assert compiled.choose("png_filter", (), twin, work=half) is twin
    assert compiled.choose("correlate_direct", (), twin, work=half) is twin
    assert compiled.thread_count() >= 1
    assert "numba" not in sys.modules  # neither the twins nor the thread count loaded it
    assert compiled.choose("png_filter", (), twin, work=1.0) is not twin  # the budget is spent
    assert "convtool._jit" in sys.modules
    assert compiled.choose("png_filter", (), twin, work=1.0) is not twin  # and numba loaded
"""
"""A short run spends the budget once: twins while it lasts, numba after."""


@pytest.mark.parametrize("script", [BUDGET, SHORT, SPENT], ids=["api", "now", "spent"])
def test_the_twin_budget(script):
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    if script is SHORT:
        assert done.stdout.strip() == "1"
