"""Where the time of one ``convtool apply`` goes, beside libvips' ``vips conv``: the pieces that
``cli.py``'s libvips rows report under their table.

convtool's pieces are timed inside a process running the command (its pipeline's read, filter,
encode and write wrapped in timers; the rest of the process after the interpreter's start-up is
imports and planning); what numba would cost is timed apart (importing it, loading the cached
machine code of the filter, the filter itself once loaded). libvips' are whole processes:
``vips --version`` (its start-up), ``vips copy`` (decoding and encoding) and ``vips conv``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

SOBEL_X = ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))
"""convtool's ``sobel-x``, the grid of the vips matrix file (``vips conv`` correlates)."""

COMMAND = """
import json, sys, time
start = time.perf_counter()
import convtool.batch.pipeline as pipeline
from convtool.cli import main
spent = {}
def timed(name, function):
    def run(*args, **options):
        t = time.perf_counter()
        try:
            return function(*args, **options)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
    return run
for name in ("read", "filter_for", "encode", "write"):
    setattr(pipeline, name, timed(name, getattr(pipeline, name)))
code = main(sys.argv[2:])
spent["rest"] = time.perf_counter() - start - sum(spent.values())
spent["numba"] = float("numba" in sys.modules)
json.dump(spent, open(sys.argv[1], "w"))
sys.exit(code)
"""
"""``convtool ARGS`` with its pipeline's steps timed; the seconds written to a JSON file."""

NUMBA = """
import json, sys, time
import numpy as np
from convtool.core.correlate import correlate_to_integer
from convtool.io.read import read_picture
picture = read_picture(sys.argv[2], samples=True)
weights = np.array(json.loads(sys.argv[3]), dtype=float)
def sobel():
    correlate_to_integer(picture.data, weights, border="nearest", map="clip", in_max=255,
                         out_max=255, method="direct")
spent = {}
t = time.perf_counter()
from convtool import compiled
compiled.core()
spent["import"] = time.perf_counter() - t
t = time.perf_counter()
sobel()
first = time.perf_counter() - t
t = time.perf_counter()
sobel()
spent["filter"] = time.perf_counter() - t
spent["load"] = first - spent["filter"]
json.dump(spent, open(sys.argv[1], "w"))
"""
"""The fused Sobel pass of the command in numba: importing numba and ``convtool._jit``, loading
the cached specialisation (the first call less the second), the filter alone (the second)."""


def find_vips() -> str | None:
    """libvips' own ``vips`` executable (``/usr/bin`` first), or None."""
    for path in dict.fromkeys(p for p in ("/usr/bin/vips", shutil.which("vips")) if p):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
            if out.stdout.startswith("vips"):
                return path
    return None


def vips_version(vips: str) -> str:
    return subprocess.run([vips, "--version"], capture_output=True, text=True).stdout.strip()


def write_matrix(path: Path, grid: tuple[tuple[int, ...], ...]) -> Path:
    """A libvips matrix file: ``width height scale offset``, then the rows."""
    rows = [" ".join(map(str, row)) for row in grid]
    path.write_text(f"{len(grid[0])} {len(grid)} 1 0\n" + "\n".join(rows) + "\n")
    return path


def _json_runs(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Medians over ``runs`` runs of ``argv + [json file]``-style snippets (the JSON file is
    ``argv``'s first argument after the code)."""
    seen: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="convtool-pieces-") as tmp:
        report = Path(tmp) / "pieces.json"
        for _ in range(runs):
            full = [*argv[:3], str(report), *argv[3:]]
            subprocess.run(full, env=env, check=True, capture_output=True, timeout=600)
            for name, value in json.loads(report.read_text()).items():
                seen.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in seen.items()}


def command_pieces(
    python: str, args: list[str], env: dict[str, str], runs: int
) -> dict[str, float]:
    """Medians of convtool's pieces (read, filter_for, encode, write, rest; numba: 1 if the
    command loaded it)."""
    return _json_runs([python, "-c", COMMAND, *args], env, runs)


def numba_pieces(python: str, src: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """Medians of numba's pieces for the Sobel of ``src`` (import, load, filter), after one
    untimed run that fills the cache."""
    argv = [python, "-c", NUMBA, str(src), json.dumps(SOBEL_X)]
    _json_runs(argv, env, 1)
    return _json_runs(argv, env, runs)


def table(
    label: str,
    interpreter: float,
    ours: dict[str, float],
    numba: dict[str, float],
    whole: float,
    vips: dict[str, float],
) -> list[str]:
    """The pieces of one format as a Markdown table: convtool's beside libvips'."""
    loaded = "numba (loaded by the command)" if ours["numba"] else "numpy twins (numba not loaded)"
    inside = sum(ours[k] for k in ("rest", "read", "filter_for", "encode", "write"))
    rows = [
        ("start-up of the interpreter / of `vips` (`vips --version`)", interpreter, vips["start"]),
        ("imports, options, planning (the rest of the process)", ours["rest"], None),
        ("decoding the input", ours["read"], None),
        (f"the filter, as the command ran it: {loaded}", ours["filter_for"], None),
        ("encoding the output", ours["encode"], None),
        ("writing the file", ours["write"], None),
        ("decoding + encoding (`vips copy`)", None, vips["copy"]),
        ("the filter (`vips conv` less `vips copy`)", None, vips["conv"] - vips["copy"]),
        ("sum of the pieces", interpreter + inside, None),
        ("the whole command, timed from outside", whole, vips["conv"]),
        ("had numba been loaded: `import numba` and `convtool._jit`", numba["import"], None),
        ("… loading the filter's cached machine code", numba["load"], None),
        ("… the filter in numba, once loaded", numba["filter"], None),
    ]
    out = [
        f"**{label}**",
        "",
        "| piece | convtool | libvips |",
        "| --- | ---: | ---: |",
    ]
    for name, a, b in rows:
        cells = [f"{v:.3f} s" if v is not None else "" for v in (a, b)]
        out.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return [*out, ""]
